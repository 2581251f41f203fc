package facilitator

import (
	"crypto/subtle"
	"net/http"

	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/x402"
)

// Handler serves the facilitator API (spec §7): POST /verify and POST
// /settle take a x402.FacilitatorRequest and answer a VerifyResponse or
// SettleResponse (200 even when the payment is refused: the refusal is in
// the body, as the spec has it; 400 for a body that is not a request,
// 401 without the configured token); GET /supported.
func (f *Facilitator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+x402.PathSupported, func(w http.ResponseWriter, r *http.Request) {
		edge.WriteJSON(w, http.StatusOK, f.Supported())
	})
	mux.HandleFunc("POST "+x402.PathVerify, func(w http.ResponseWriter, r *http.Request) {
		req, ok := f.decode(w, r)
		if !ok {
			return
		}
		resp := f.Verify(r.Context(), &req.PaymentPayload, &req.PaymentRequirements)
		status := http.StatusOK
		if !resp.IsValid && resp.InvalidReason == x402.ReasonInvalidPayload {
			status = http.StatusBadRequest
		}
		edge.WriteJSON(w, status, resp)
	})
	mux.HandleFunc("POST "+x402.PathSettle, func(w http.ResponseWriter, r *http.Request) {
		req, ok := f.decode(w, r)
		if !ok {
			return
		}
		edge.WriteJSON(w, http.StatusOK, f.Settle(r.Context(), &req.PaymentPayload, &req.PaymentRequirements))
	})
	return mux
}

func (f *Facilitator) decode(w http.ResponseWriter, r *http.Request) (*x402.FacilitatorRequest, bool) {
	if f.o.Token != "" {
		tok, err := edge.Bearer(r)
		if err != nil || subtle.ConstantTimeCompare([]byte(tok), []byte(f.o.Token)) != 1 {
			edge.WriteJSON(w, http.StatusUnauthorized, &x402.VerifyResponse{InvalidReason: "unauthorized", InvalidMessage: "this facilitator needs its bearer token"})
			return nil, false
		}
	}
	var req x402.FacilitatorRequest
	if err := wire.Read(r.Body, x402.MaxBody, &req); err != nil {
		edge.WriteJSON(w, http.StatusBadRequest, &x402.VerifyResponse{InvalidReason: x402.ReasonInvalidPayload, InvalidMessage: "malformed request: " + err.Error()})
		return nil, false
	}
	return &req, true
}
