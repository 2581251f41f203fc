package tdx

import (
	"bytes"
	"encoding/hex"

	"github.com/chatmcp/chatmcp/attest"
)

// tdAttributesDebug is bit 0 of TD_ATTRIBUTES (TUD.DEBUG): when set, the
// TD runs in debug mode and the host VMM can read and write its state.
// go-tdx-guest's verify does not look at it; it is read here.
const tdAttributesDebug = 1 << 0

// claims normalizes a verified quote. status is the TCB status from Intel's
// collateral, "" when none was checked.
func claims(q *Quote, status string) *attest.Claims {
	body := q.Proto.GetTdQuoteBody()
	attrs := body.GetTdAttributes()
	c := &attest.Claims{
		TEE:         attest.TDX,
		Measurement: bytes.Clone(body.GetMrTd()),
		ReportData:  bytes.Clone(body.GetReportData()),
		Debug:       len(attrs) > 0 && attrs[0]&tdAttributesDebug != 0,
		TCBStatus:   status,
		Platform: map[string]string{
			"td_attributes": hex.EncodeToString(attrs),
			"xfam":          hex.EncodeToString(body.GetXfam()),
			"mr_seam":       hex.EncodeToString(body.GetMrSeam()),
			"mr_config_id":  hex.EncodeToString(body.GetMrConfigId()),
			"mr_owner":      hex.EncodeToString(body.GetMrOwner()),
			"tee_tcb_svn":   hex.EncodeToString(body.GetTeeTcbSvn()),
		},
	}
	for _, r := range body.GetRtmrs() {
		c.RTMRs = append(c.RTMRs, bytes.Clone(r))
	}
	return c
}
