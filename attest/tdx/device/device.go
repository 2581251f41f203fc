// Package device obtains TDX quotes from inside a trust domain, through the
// kernel's configfs-tsm interface or /dev/tdx_guest. It is the only TDX code
// that touches a device; verifiers never import it.
package device

import (
	"bytes"
	"context"
	"fmt"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/tdx"
	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"
	"github.com/google/go-tdx-guest/client"
)

// Options configure an Attester. A nil *Options is the same as the zero
// value: the kernel's configfs-tsm when present, otherwise /dev/tdx_guest.
type Options struct {
	// TSM is the configfs-tsm client to request quotes from. If nil, the
	// kernel's (/sys/kernel/config/tsm) is used when it exists.
	TSM configfsi.Client
	// Device is the TDX guest device to request quotes from when TSM is nil
	// and the kernel has no configfs-tsm. If nil, /dev/tdx_guest is opened
	// for each request and closed after it.
	Device client.Device
}

// Attester gets TDX quotes. It implements attest.Attester.
type Attester struct {
	tsm    configfsi.Client
	device client.Device
}

var _ attest.Attester = (*Attester)(nil)

// New returns an Attester configured by opts, which may be nil.
func New(opts *Options) *Attester {
	if opts == nil {
		opts = &Options{}
	}
	return &Attester{tsm: opts.TSM, device: opts.Device}
}

// TEE returns attest.TDX.
func (a *Attester) TEE() attest.TEE { return attest.TDX }

// Attest asks for a quote binding reportData. The quote is parsed, and its
// REPORT_DATA compared with reportData, before it is returned (without the
// zero padding quote buffers carry); its signatures are not checked here:
// that is the verifier's job.
func (a *Attester) Attest(ctx context.Context, reportData [attest.ReportDataSize]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	raw, err := a.get(reportData)
	if err != nil {
		return nil, err
	}
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		return nil, fmt.Errorf("TDX quote generation returned a bad quote: %w", err)
	}
	if !bytes.Equal(q.Proto.GetTdQuoteBody().GetReportData(), reportData[:]) {
		return nil, fmt.Errorf("TDX quote generation returned a quote for other report data")
	}
	return &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.TDX, Report: q.Raw}, nil
}

func (a *Attester) get(reportData [64]byte) ([]byte, error) {
	tsm := a.tsm
	if tsm == nil && a.device == nil {
		if c, err := linuxtsm.MakeClient(); err == nil {
			tsm = c
		}
	}
	if tsm != nil {
		resp, err := report.Get(tsm, &report.Request{InBlob: reportData[:]})
		if err != nil {
			return nil, fmt.Errorf("configfs-tsm report: %w", err)
		}
		if resp.Provider != "tdx_guest\n" {
			return nil, fmt.Errorf("configfs-tsm report provider is %q, not tdx_guest", resp.Provider)
		}
		return resp.OutBlob, nil
	}
	d := a.device
	if d == nil {
		ld, err := client.OpenDevice()
		if err != nil {
			return nil, fmt.Errorf("opening /dev/tdx_guest (no configfs-tsm either): %w", err)
		}
		defer ld.Close()
		d = ld
	}
	raw, err := client.GetRawQuote(d, reportData)
	if err != nil {
		return nil, fmt.Errorf("TDX quote via /dev/tdx_guest: %w", err)
	}
	return raw, nil
}
