package signer

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/signerapi"
)

// Token lifetimes of the mint endpoint.
const (
	DefaultTokenTTL = 24 * time.Hour
	MaxTokenTTL     = 720 * time.Hour
)

// ServerOptions configure Handler.
type ServerOptions struct {
	// Signer decides and signs. Required.
	Signer *Signer
	// TokenKey mints and verifies capability tokens. Required.
	TokenKey *captoken.Key
	// Audience is the signer's token audience. Required.
	Audience string
	// AdminToken authorizes the admin API. Required.
	AdminToken string
	// Attestation, if non-nil, serves signerapi.PathAttestation.
	Attestation http.Handler
	// Dev is reported by PathPubkey.
	Dev bool
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Logger receives internal causes. If nil, slog.Default().
	Logger *slog.Logger
}

type server struct {
	o    *ServerOptions
	edge edge.Server
	ver  *captoken.Verifier
	now  func() time.Time
}

// Handler returns the signer's HTTP API (signerapi paths).
func Handler(o *ServerOptions) http.Handler {
	s := &server{o: o, now: o.Now,
		edge: edge.Server{Name: "signer", Logger: o.Logger, Codes: edge.Codes{
			Malformed: signerapi.ReasonMalformed, TooLarge: signerapi.ReasonTooLarge, Internal: signerapi.ReasonInternal}}}
	if s.now == nil {
		s.now = time.Now
	}
	// Revocations live in the ledger's store.
	s.ver = &captoken.Verifier{Key: o.TokenKey, Audience: o.Audience, Revocations: o.Signer.ledger, Now: s.now}
	mux := http.NewServeMux()
	if o.Attestation != nil {
		mux.Handle("GET "+signerapi.PathAttestation, o.Attestation)
	}
	mux.HandleFunc("GET "+signerapi.PathPubkey, s.pubkey)
	mux.HandleFunc("POST "+signerapi.PathSign, s.sign)
	mux.HandleFunc("POST "+signerapi.PathSignMessage, s.signMessage)
	mux.HandleFunc("GET "+signerapi.PathStatements, s.ownApprovals)
	mux.HandleFunc("POST "+signerapi.PathStatements+"/{id}/statement", s.statement)
	mux.HandleFunc("POST "+signerapi.PathTokens, s.admin(s.mint))
	mux.HandleFunc("POST "+signerapi.PathTokens+"/{id}/revoke", s.admin(s.revoke))
	mux.HandleFunc("GET "+signerapi.PathApprovals, s.admin(s.approvals))
	mux.HandleFunc("POST "+signerapi.PathApprovals+"/{id}/{decision}", s.admin(s.decide))
	mux.HandleFunc("POST "+signerapi.PathRelease, s.admin(s.release))
	mux.HandleFunc("GET "+signerapi.PathBudget, s.admin(s.budget))
	// Any other method on a known path is a JSON refusal too (ServeMux's
	// own 405 is plain text).
	for _, p := range []string{signerapi.PathPubkey, signerapi.PathSign, signerapi.PathSignMessage, signerapi.PathStatements,
		signerapi.PathStatements + "/{id}/statement", signerapi.PathTokens, signerapi.PathTokens + "/{id}/revoke", signerapi.PathApprovals,
		signerapi.PathApprovals + "/{id}/{decision}", signerapi.PathRelease, signerapi.PathBudget} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			s.edge.WriteError(w, r, edge.Errorf(http.StatusMethodNotAllowed, signerapi.ReasonMethod, "%s does not take %s", r.URL.Path, r.Method))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.edge.WriteError(w, r, edge.Errorf(http.StatusNotFound, signerapi.ReasonNotFound, "no such endpoint"))
	})
	return mux
}

func (s *server) pubkey(w http.ResponseWriter, r *http.Request) {
	edge.WriteJSON(w, http.StatusOK, signerapi.Pubkey{PublicKey: s.o.Signer.PublicKey().String(), Audience: s.o.Audience,
		FeePayerOnly: s.o.Signer.Policy().FeePayerOnly, Dev: s.o.Dev})
}

// token verifies the request's capability token.
func (s *server) token(r *http.Request) (*captoken.Verified, error) {
	t, err := edge.Bearer(r)
	if err != nil {
		return nil, edge.Errorf(http.StatusUnauthorized, signerapi.ReasonUnauthorized, "a capability token is required")
	}
	v, err := s.ver.Verify(r.Context(), t)
	if err != nil {
		for _, e := range []error{captoken.ErrMalformed, captoken.ErrSignature, captoken.ErrExpired, captoken.ErrAudience, captoken.ErrRevoked} {
			if errors.Is(err, e) {
				return nil, edge.Errorf(http.StatusUnauthorized, signerapi.ReasonUnauthorized, "capability token refused: %s", e)
			}
		}
		return nil, s.edge.Internal(err)
	}
	return v, nil
}

// refusal maps a Signer error to the edge.
func (s *server) refusal(err error) error {
	var rf *Refusal
	switch {
	case errors.As(err, &rf):
		return edge.Errorf(signerapi.StatusRefused, rf.Rule, "%s", rf.Error())
	case errors.Is(err, ErrMalformed):
		return edge.Errorf(signerapi.StatusMalformed, signerapi.ReasonMalformedTransaction, "%s", err.Error())
	}
	return s.edge.Internal(err)
}

func (s *server) sign(w http.ResponseWriter, r *http.Request) {
	tok, err := s.token(r)
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	var req signerapi.SignRequest
	if err := s.edge.DecodeJSON(r, signerapi.MaxBody, &req); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	resp, err := s.o.Signer.SignTransaction(r.Context(), tok, req.Transaction)
	if err != nil {
		s.edge.WriteError(w, r, s.refusal(err))
		return
	}
	edge.WriteJSON(w, http.StatusOK, resp)
}

func (s *server) signMessage(w http.ResponseWriter, r *http.Request) {
	tok, err := s.token(r)
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	var req signerapi.SignMessageRequest
	if err := s.edge.DecodeJSON(r, signerapi.MaxBody, &req); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	sig, err := s.o.Signer.SignMessage(r.Context(), tok, req.Message)
	if err != nil {
		s.edge.WriteError(w, r, s.refusal(err))
		return
	}
	edge.WriteJSON(w, http.StatusOK, signerapi.SignMessageResponse{Signature: sig})
}

func (s *server) ownApprovals(w http.ResponseWriter, r *http.Request) {
	tok, err := s.token(r)
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, s.o.Signer.PendingFor(tok))
}

func (s *server) statement(w http.ResponseWriter, r *http.Request) {
	body, err := s.edge.ReadBody(r, agentapi.MaxStatementSize)
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	err = s.o.Signer.DecideByStatement(r.Context(), r.PathValue("id"), body)
	var sr *StatementRefusal
	if errors.As(err, &sr) {
		status := map[string]int{signerapi.ReasonBadStatement: 400, signerapi.ReasonStatementExpired: 403, signerapi.ReasonNoApprover: 403,
			signerapi.ReasonNotApprover: 403, signerapi.ReasonArgumentsMismatch: 409, signerapi.ReasonNotPending: 404}[sr.Reason]
		s.edge.WriteError(w, r, edge.Errorf(status, sr.Reason, "%s", sr.Msg))
		return
	}
	if err != nil {
		s.edge.WriteError(w, r, s.edge.Internal(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) admin(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := edge.Bearer(r)
		if err != nil || subtle.ConstantTimeCompare([]byte(t), []byte(s.o.AdminToken)) != 1 {
			s.edge.WriteError(w, r, edge.Errorf(http.StatusUnauthorized, signerapi.ReasonUnauthorized, "the admin token is required"))
			return
		}
		if err := h(w, r); err != nil {
			s.edge.WriteError(w, r, err)
		}
	}
}

func (s *server) mint(w http.ResponseWriter, r *http.Request) error {
	var req signerapi.MintRequest
	if err := s.edge.DecodeJSON(r, signerapi.MaxBody, &req); err != nil {
		return err
	}
	ttl := DefaultTokenTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > MaxTokenTTL {
			return edge.Errorf(http.StatusBadRequest, signerapi.ReasonBadTTL, "ttl %q not in (0, %s]", req.TTL, MaxTokenTTL)
		}
		ttl = d
	}
	var budget *captoken.Budget
	if req.Budget != "" {
		b, err := captoken.ParseBudget(req.Budget)
		if err != nil {
			return edge.Errorf(http.StatusBadRequest, signerapi.ReasonBadBudget, "%v", err)
		}
		budget = b
	}
	if len(req.Subject) > captoken.MaxStringLen {
		return edge.Errorf(http.StatusBadRequest, signerapi.ReasonMalformed, "subject longer than %d bytes", captoken.MaxStringLen)
	}
	tok, err := captoken.Mint(s.o.TokenKey, captoken.Claims{Audience: s.o.Audience, Subject: req.Subject,
		Tools: []string{OpSignTransaction, OpSignMessage}, Expires: s.now().Add(ttl)})
	if err != nil {
		return s.edge.Internal(err)
	}
	if budget != nil {
		if tok, err = captoken.Attenuate(tok, captoken.Caveat{Budget: budget}); err != nil {
			return s.edge.Internal(err)
		}
	}
	p, err := captoken.Parse(tok)
	if err != nil {
		return s.edge.Internal(err)
	}
	edge.WriteJSON(w, http.StatusOK, signerapi.MintResponse{ID: p.ID, Token: tok, Expires: p.Expires})
	return nil
}

func (s *server) revoke(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !validRevocationID(id) {
		return edge.Errorf(http.StatusBadRequest, signerapi.ReasonBadID, "token id %q is not 32 or 64 lowercase hex digits", id)
	}
	if err := s.o.Signer.Revoke(r.Context(), id); err != nil {
		return s.edge.Internal(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) approvals(w http.ResponseWriter, r *http.Request) error {
	edge.WriteJSON(w, http.StatusOK, s.o.Signer.Pending())
	return nil
}

func (s *server) decide(w http.ResponseWriter, r *http.Request) error {
	var approve bool
	switch r.PathValue("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		return edge.Errorf(http.StatusNotFound, signerapi.ReasonNotFound, "no such endpoint")
	}
	if err := s.o.Signer.Decide(r.Context(), r.PathValue("id"), approve); err != nil {
		if errors.Is(err, ErrNotPending) {
			return edge.Errorf(http.StatusNotFound, signerapi.ReasonNotPending, "approval %q is not pending", r.PathValue("id"))
		}
		return s.edge.Internal(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) release(w http.ResponseWriter, r *http.Request) error {
	var req signerapi.ReleaseRequest
	if err := s.edge.DecodeJSON(r, signerapi.MaxBody, &req); err != nil {
		return err
	}
	res, err := s.o.Signer.Release(r.Context(), strings.TrimSpace(req.Signature))
	if errors.Is(err, ErrNotReserved) {
		return edge.Errorf(http.StatusNotFound, signerapi.ReasonNotPending, "no live reservation for signature %q", req.Signature)
	}
	if err != nil {
		return s.edge.Internal(err)
	}
	edge.WriteJSON(w, http.StatusOK, res)
	return nil
}

func (s *server) budget(w http.ResponseWriter, r *http.Request) error {
	b, err := s.o.Signer.Budget(r.Context())
	if err != nil {
		return s.edge.Internal(err)
	}
	edge.WriteJSON(w, http.StatusOK, b)
	return nil
}

// Release releases a reservation (admin) and audits it.
func (s *Signer) Release(ctx context.Context, signature string) (*signerapi.Reservation, error) {
	res, err := s.ledger.Release(ctx, signature)
	if err != nil {
		return nil, err
	}
	if err := s.audit.Append(context.WithoutCancel(ctx), auditRelease(res)); err != nil {
		return nil, err
	}
	return res, nil
}

// Revoke revokes a token or chain id (admin) and audits it.
func (s *Signer) Revoke(ctx context.Context, id string) error {
	if err := s.ledger.Revoke(ctx, id); err != nil {
		return err
	}
	return s.audit.Append(context.WithoutCancel(ctx), audit.Entry{Type: "signer.revoke", Actor: "admin", Action: "revoke", Decision: "ok", Request: id})
}

// Budget reports the overall window.
func (s *Signer) Budget(ctx context.Context) (*signerapi.Budget, error) {
	w := s.pol.Window
	if w == nil {
		return &signerapi.Budget{}, nil
	}
	used, err := s.ledger.Reserved(ctx, "", time.Duration(w.Period))
	if err != nil {
		return nil, err
	}
	return &signerapi.Budget{Period: time.Duration(w.Period).String(), Max: w.Max, Reserved: used}, nil
}
