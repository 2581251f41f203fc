// Package device obtains SEV-SNP attestation reports from inside an SEV-SNP
// guest, through the kernel's configfs-tsm interface or /dev/sev-guest. It
// is the only SEV-SNP code that touches a device; verifiers never import it.
package device

import (
	"bytes"
	"context"
	"fmt"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/sevsnp"
	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"
)

// Options configure an Attester. A nil *Options is the same as the zero
// value: the kernel's configfs-tsm when present, otherwise /dev/sev-guest.
type Options struct {
	// TSM is the configfs-tsm client to request reports from. If nil, the
	// kernel's (/sys/kernel/config/tsm) is used when it exists.
	TSM configfsi.Client
	// Device is the SEV guest device to request extended reports from when
	// TSM is nil and the kernel has no configfs-tsm. If nil, /dev/sev-guest
	// is opened for each request and closed after it.
	Device client.Device
	// VMPL is the VM privilege level to request the report at. If nil, the
	// kernel's default (configfs-tsm) or 0 (/dev/sev-guest).
	VMPL *uint
}

// Attester gets SEV-SNP reports from the guest's firmware. It implements
// attest.Attester.
type Attester struct {
	tsm    configfsi.Client
	device client.Device
	vmpl   *uint
}

var _ attest.Attester = (*Attester)(nil)

// New returns an Attester configured by opts, which may be nil.
func New(opts *Options) *Attester {
	if opts == nil {
		opts = &Options{}
	}
	return &Attester{tsm: opts.TSM, device: opts.Device, vmpl: opts.VMPL}
}

// TEE returns attest.SEVSNP.
func (a *Attester) TEE() attest.TEE { return attest.SEVSNP }

// Attest asks the firmware for a report binding reportData and returns it
// with the endorsement certificates the host supplied (VCEK or VLEK, then
// ASK, as DER; none when the host supplies none). The report is parsed, and
// its REPORT_DATA compared with reportData, before it is returned; its
// signature is not checked here: that is the verifier's job.
func (a *Attester) Attest(ctx context.Context, reportData [attest.ReportDataSize]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	raw, table, err := a.get(reportData)
	if err != nil {
		return nil, err
	}
	r, err := sevsnp.ParseReport(raw)
	if err != nil {
		return nil, fmt.Errorf("SEV-SNP firmware returned a bad report: %w", err)
	}
	if !bytes.Equal(r.Proto.GetReportData(), reportData[:]) {
		return nil, fmt.Errorf("SEV-SNP firmware returned a report for other report data")
	}
	certs, err := certsFromTable(table)
	if err != nil {
		return nil, err
	}
	return &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.SEVSNP, Report: r.Raw, Certs: certs}, nil
}

// get returns the raw report and the host's certificate table.
func (a *Attester) get(reportData [64]byte) ([]byte, []byte, error) {
	tsm := a.tsm
	if tsm == nil && a.device == nil {
		if c, err := linuxtsm.MakeClient(); err == nil {
			tsm = c
		}
	}
	if tsm != nil {
		req := &report.Request{InBlob: reportData[:], GetAuxBlob: true}
		if a.vmpl != nil {
			req.Privilege = &report.Privilege{Level: *a.vmpl}
		}
		resp, err := report.Get(tsm, req)
		if err != nil {
			return nil, nil, fmt.Errorf("configfs-tsm report: %w", err)
		}
		if resp.Provider != "sev_guest\n" {
			return nil, nil, fmt.Errorf("configfs-tsm report provider is %q, not sev_guest", resp.Provider)
		}
		return resp.OutBlob, resp.AuxBlob, nil
	}
	d := a.device
	if d == nil {
		ld, err := client.OpenDevice()
		if err != nil {
			return nil, nil, fmt.Errorf("opening /dev/sev-guest (no configfs-tsm either): %w", err)
		}
		defer ld.Close()
		d = ld
	}
	vmpl := 0
	if a.vmpl != nil {
		vmpl = int(*a.vmpl)
	}
	raw, table, err := client.GetRawExtendedReportAtVmpl(d, reportData, vmpl)
	if err != nil {
		return nil, nil, fmt.Errorf("SEV-SNP extended report: %w", err)
	}
	return raw, table, nil
}

// certsFromTable extracts the VCEK, VLEK and ASK from the GHCB certificate
// table the host supplies (an empty table gives no certificates).
func certsFromTable(table []byte) ([][]byte, error) {
	if len(bytes.TrimRight(table, "\x00")) == 0 {
		return nil, nil
	}
	var t abi.CertTable
	if err := t.Unmarshal(table); err != nil {
		return nil, fmt.Errorf("SEV-SNP certificate table: %w", err)
	}
	var certs [][]byte
	for _, guid := range []string{abi.VcekGUID, abi.VlekGUID, abi.AskGUID} {
		if der, err := t.GetByGUIDString(guid); err == nil && len(der) > 0 {
			certs = append(certs, bytes.Clone(der))
		}
	}
	if len(certs) > attest.MaxCerts {
		return nil, fmt.Errorf("SEV-SNP certificate table holds %d certificates, more than %d", len(certs), attest.MaxCerts)
	}
	return certs, nil
}
