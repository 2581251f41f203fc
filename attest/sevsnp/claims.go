package sevsnp

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
)

// debugPolicyBit is bit 19 of the guest POLICY: when set, the hypervisor may
// use the SNP debug commands to read and write the guest's memory.
const debugPolicyBit = 19

// claims normalizes a verified report.
func claims(r *Report, k *endorsementKey) *attest.Claims {
	p := r.Proto
	vmpl := int(p.GetVmpl())
	c := &attest.Claims{
		TEE:         attest.SEVSNP,
		Measurement: bytes.Clone(p.GetMeasurement()),
		ReportData:  bytes.Clone(p.GetReportData()),
		Debug:       p.GetPolicy()&(1<<debugPolicyBit) != 0,
		VMPL:        &vmpl,
		TCB:         reportedTCB(p.GetReportedTcb(), k.productLine),
		Platform: map[string]string{
			"chip_id":        hex.EncodeToString(p.GetChipId()),
			"product_line":   k.productLine,
			"signing_key":    r.Signer.String(),
			"report_version": strconv.FormatUint(uint64(p.GetVersion()), 10),
			"policy":         fmt.Sprintf("%#x", p.GetPolicy()),
			"guest_svn":      strconv.FormatUint(uint64(p.GetGuestSvn()), 10),
			"reported_tcb":   fmt.Sprintf("%#016x", p.GetReportedTcb()),
			"host_data":      hex.EncodeToString(p.GetHostData()),
		},
	}
	if r.Signer != abi.VcekReportSigner {
		delete(c.Platform, "chip_id")
	}
	return c
}

// reportedTCB splits a TCB_VERSION in the layout of Milan and Genoa
// (byte 0 boot loader, 1 TEE, 6 SNP, 7 microcode). Turin (family 1Ah) lays
// the components out differently (it adds an FMC component) and go-sev-guest
// v0.15.0 does not decode that layout, so for Turin, and for any product
// line not known here, no TCB claim is made: a policy with min_tcb then
// rejects the report rather than compare misread numbers.
func reportedTCB(tcb uint64, productLine string) *attest.TCBVersion {
	switch productLine {
	case "Milan", "Genoa":
	default:
		return nil
	}
	parts := kds.DecomposeTCBVersion(kds.TCBVersion(tcb))
	return &attest.TCBVersion{
		BootLoader: parts.BlSpl,
		TEE:        parts.TeeSpl,
		SNP:        parts.SnpSpl,
		Microcode:  parts.UcodeSpl,
	}
}
