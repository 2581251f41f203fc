package sevsnp

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/internal/keyfile"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/verify/trust"
)

// Subject common names of AMD's endorsement key certificates (AMD KDS
// specification, publication 57230).
const (
	vcekCommonName = "SEV-VCEK"
	vlekCommonName = "SEV-VLEK"
)

// isSignerCert reports whether der is a certificate for the kind of key
// that signed r: its subject is SEV-VCEK (or SEV-VLEK for a VLEK-signed
// report). Certificates that are not (an ASK, an ARK, anything that does not
// parse) are ignored by the caller: the chain is always built to the
// verifier's trusted roots, never to certificates the evidence brings.
func isSignerCert(der []byte, signer abi.ReportSigner) bool {
	want := vcekCommonName
	if signer == abi.VlekReportSigner {
		want = vlekCommonName
	}
	c, err := x509.ParseCertificate(der)
	return err == nil && c.Subject.CommonName == want
}

// VCEKFileName is the name under Options.CacheDir of the VCEK for a chip
// (its 64-byte CHIP_ID) at a reported TCB in a product line.
func VCEKFileName(productLine string, chipID []byte, tcb uint64) string {
	return fmt.Sprintf("vcek-%s-%x-%016x.der", productLine, chipID, tcb)
}

// lookupVCEK finds the VCEK for a report that carries none: in the cache
// directory, then, when the verifier is online, from AMD's KDS (saving it in
// the cache directory). It needs the product line (report version 3 and
// later) and an unmasked CHIP_ID.
func (v *Verifier) lookupVCEK(ctx context.Context, r *Report) ([]byte, error) {
	if r.Signer != abi.VcekReportSigner {
		return nil, attest.Errorf(attest.CheckCertificate, "report is signed by a VLEK and the evidence carries no VLEK certificate")
	}
	fms := r.Proto.GetCpuid1EaxFms()
	chip := r.Proto.GetChipId()
	if fms == 0 || allZero(chip) || (v.cacheDir == "" && v.getter == nil) {
		return nil, attest.Errorf(attest.CheckCertificate, "evidence carries no VCEK certificate (pass it with the evidence, or configure a VCEK cache directory or AMD KDS access)")
	}
	productLine := kds.ProductLineFromFms(fms)
	tcb := r.Proto.GetReportedTcb()
	var path string
	if v.cacheDir != "" {
		path = filepath.Join(v.cacheDir, VCEKFileName(productLine, chip, tcb))
		der, err := readLimited(path, attest.MaxCertSize)
		if err == nil {
			return der, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, attest.Errorf(attest.CheckCertificate, "reading cached VCEK: %w", err)
		}
	}
	if v.getter == nil {
		return nil, attest.Errorf(attest.CheckCertificate, "no VCEK certificate in the evidence or in %s, and fetching from AMD KDS is off", v.cacheDir)
	}
	url := kds.VCEKCertURL(productLine, chip, kds.TCBVersion(tcb))
	der, err := trust.GetWith(ctx, v.getter, url)
	if err != nil {
		return nil, attest.Errorf(attest.CheckCertificate, "fetching VCEK from AMD KDS: %w", err)
	}
	if len(der) == 0 || len(der) > attest.MaxCertSize {
		return nil, attest.Errorf(attest.CheckCertificate, "AMD KDS returned a VCEK of %d bytes, want 1..%d", len(der), attest.MaxCertSize)
	}
	if path != "" {
		// The cache is an optimisation: failing to write it does not fail
		// verification, and what is read back is verified again.
		_ = keyfile.WriteAtomic(path, der, 0o600)
	}
	return der, nil
}

func readLimited(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) == 0 || len(b) > limit {
		return nil, fmt.Errorf("%s: %d bytes, want 1..%d", path, len(b), limit)
	}
	return b, nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
