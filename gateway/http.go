package gateway

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"net/http"
	"path"
	"sort"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/gateway/approval"
	"github.com/chatmcp/chatmcp/gateway/authz"
	"github.com/chatmcp/chatmcp/gateway/catalog"
	"github.com/chatmcp/chatmcp/gateway/credential"
	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/ratls"
)

// Paths of the HTTP surface (gatewayapi, docs/gateway.md).
const (
	PathMCP           = gatewayapi.PathMCP
	PathAttestation   = gatewayapi.PathAttestation
	PathCredentialKey = gatewayapi.PathCredentialKey
	PathCredentials   = gatewayapi.PathCredentials
	PathAdmin         = gatewayapi.PathAdmin
)

// Bodies of the admin API, declared in gatewayapi.
type (
	MintRequest        = gatewayapi.MintRequest
	MintResponse       = gatewayapi.MintResponse
	ToolApproveRequest = gatewayapi.ToolApproveRequest
	Info               = gatewayapi.Info
)

// codes are the gateway's reason codes for the refusals the HTTP edge
// (internal/edge) makes itself.
var codes = edge.Codes{
	Malformed: gatewayapi.ReasonMalformed,
	TooLarge:  gatewayapi.ReasonTooLarge,
	Internal:  gatewayapi.ReasonInternal,
}

// httpEdge is the gateway's half of the HTTP edge: refusals are
// *edge.Error, internal causes go to the gateway's log.
func (s *Server) httpEdge() *edge.Server {
	return &edge.Server{Name: "gateway", Codes: codes, Logger: s.log}
}

// fail answers err (an *edge.Error, or an internal error: logged, 500).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.httpEdge().WriteError(w, r, err)
}

type ctxKey int

const principalKey ctxKey = 1

// principalOf returns the principal that the HTTP layer verified for this
// MCP request.
func principalOf(extra *mcp.RequestExtra) *authz.Principal {
	if extra == nil || extra.TokenInfo == nil {
		return nil
	}
	p, _ := extra.TokenInfo.Extra["principal"].(*authz.Principal)
	return p
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	streamable := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp }, &mcp.StreamableHTTPOptions{
		SessionTimeout: SessionIdleTimeout,
		// The gateway's own Host and Origin check (hostcheck.go) runs
		// before this handler and knows allowed_hosts; the SDK's loopback
		// check would refuse a gateway reached under a configured name.
		DisableLocalhostProtection: true,
	})
	// The SDK's bearer middleware binds each MCP session to the token id
	// (TokenInfo.UserID), so a session cannot be continued with another
	// principal's token. Our own check runs first to answer in the
	// contract's 401 format; the SDK's verifier then reads its result.
	sdkAuth := auth.RequireBearerToken(func(ctx context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		p, _ := r.Context().Value(principalKey).(*authz.Principal)
		if p == nil {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: p.ChainID, Expiration: p.Expires, Extra: map[string]any{"principal": p}}, nil
	}, nil)
	mux.Handle(PathMCP, s.tagRequests(s.requireToken(sdkAuth(s.byProtocol(streamable)))))
	mux.Handle(PathAttestation, ratls.AttestationHandler(s.opts.Attester, s.issuer.SPKI))
	mux.HandleFunc(PathCredentialKey, s.handleCredentialKey)
	mux.Handle(PathCredentials, s.requireToken(http.HandlerFunc(s.handleCredentials)))
	mux.HandleFunc("POST "+gatewayapi.PathTokens, s.admin(s.handleMint))
	mux.HandleFunc("POST "+gatewayapi.PathTokens+"/{id}/revoke", s.admin(s.handleRevoke))
	mux.HandleFunc("GET "+gatewayapi.PathApprovals, s.admin(s.handleApprovals))
	mux.HandleFunc("POST "+gatewayapi.PathApprovals+"/{id}/approve", s.admin(s.handleDecide(approval.Approved)))
	mux.HandleFunc("POST "+gatewayapi.PathApprovals+"/{id}/deny", s.admin(s.handleDecide(approval.Denied)))
	mux.HandleFunc("GET "+gatewayapi.PathPendingTools, s.admin(s.handlePending))
	mux.HandleFunc("POST "+gatewayapi.PathTools+"/{name}/approve", s.admin(s.handleToolApprove))
	mux.HandleFunc("GET "+gatewayapi.PathInfo, s.admin(s.handleInfo))
	mux.HandleFunc("POST "+gatewayapi.PathStatements+"/{id}/statement", s.handleStatement)
	mux.Handle("POST "+gatewayapi.PathRevokeDerived, s.requireToken(http.HandlerFunc(s.handleRevokeDerived)))
	mux.HandleFunc(PathAdmin, s.admin(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, edge.Errorf(http.StatusNotFound, gatewayapi.ReasonNotFound, "no such admin endpoint"))
	}))
	return mux
}

// requireToken verifies the capability token of every request: missing,
// malformed, forged, wrong-audience, expired or revoked tokens get 401.
func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := edge.Bearer(r)
		if err != nil {
			s.auditTokenRefusal(r, err.Error())
			s.unauthorized(w, r, err.Error())
			return
		}
		p, err := s.tokens.Verify(r.Context(), tok)
		if err != nil {
			s.auditTokenRefusal(r, tokenErrorMessage(err))
			s.unauthorized(w, r, tokenErrorMessage(err))
			return
		}
		s.auditSessionOwner(r, p)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	s.fail(w, r, edge.Errorf(http.StatusUnauthorized, gatewayapi.ReasonUnauthorized, "%s", msg))
}

// tokenErrorMessage names the failed check without internal detail.
func tokenErrorMessage(err error) string {
	switch {
	case errors.Is(err, captoken.ErrMalformed):
		return "malformed token"
	case errors.Is(err, captoken.ErrSignature):
		return "invalid token signature"
	case errors.Is(err, captoken.ErrAudience):
		return "token is for another gateway"
	case errors.Is(err, captoken.ErrExpired):
		return "token expired"
	case errors.Is(err, captoken.ErrRevoked):
		return "token revoked"
	case errors.Is(err, authz.ErrRevocationsStale):
		return "revocation list stale: no token accepted until this replica reaches its database"
	}
	return "token refused"
}

// middleware runs inside the MCP server for every client request: it
// tracks sessions (to drop their credentials and upstream connections when
// they end) and filters list results to what the caller's token allows.
func (s *Server) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		// Cancelled also when the client goes away or the gateway stops
		// (cancel.go).
		ctx, done := s.requestContext(ctx, req)
		defer done()
		p := principalOf(req.GetExtra())
		if ss, ok := req.GetSession().(*mcp.ServerSession); ok && p != nil {
			s.track(ss, p)
		}
		if method == "tools/call" && p != nil {
			// A call of a name the token does not allow or the gateway does
			// not expose never reaches a handler; it is refused (one answer
			// for both) and audited here (refusal.go).
			if cp, ok := req.GetParams().(*mcp.CallToolParamsRaw); ok {
				if err := s.refuseCallName(ctx, p, cp); err != nil {
					return nil, err
				}
			}
		}
		res, err := next(ctx, method, req)
		if err != nil || p == nil {
			return res, err
		}
		return filterList(p, res), nil
	}
}

// filterList narrows a list result to the names p's token allows; other
// results pass as they are.
func filterList(p *authz.Principal, res mcp.Result) mcp.Result {
	switch r := res.(type) {
	case *mcp.ListToolsResult:
		out := *r
		out.Tools = allowed(p, r.Tools, func(t *mcp.Tool) string { return t.Name })
		return &out
	case *mcp.ListPromptsResult:
		out := *r
		out.Prompts = allowed(p, r.Prompts, func(pr *mcp.Prompt) string { return pr.Name })
		return &out
	case *mcp.ListResourcesResult:
		out := *r
		out.Resources = allowed(p, r.Resources, func(rs *mcp.Resource) string { return rs.Name })
		return &out
	case *mcp.ListResourceTemplatesResult:
		out := *r
		out.ResourceTemplates = allowed(p, r.ResourceTemplates, func(rt *mcp.ResourceTemplate) string { return rt.Name })
		return &out
	}
	return res
}

// allowed returns the items of in whose name p's token allows, in order.
func allowed[T any](p *authz.Principal, in []T, name func(T) string) []T {
	out := make([]T, 0, len(in))
	for _, v := range in {
		if p.Allows(name(v)) {
			out = append(out, v)
		}
	}
	return out
}

// session is a client MCP session the gateway has seen.
type session struct {
	// chainID is the principal id of the token that opened it: a parent
	// token and its attenuations are different principals.
	chainID string
}

// track records ss on first sight and cleans up when it ends.
func (s *Server) track(ss *mcp.ServerSession, p *authz.Principal) {
	sid := ss.ID()
	if sid == "" {
		return
	}
	s.mu.RLock()
	_, ok := s.sessions[sid]
	s.mu.RUnlock()
	if ok {
		return
	}
	s.mu.Lock()
	if _, ok := s.sessions[sid]; ok {
		s.mu.Unlock()
		return
	}
	s.sessions[sid] = &session{chainID: p.ChainID}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		done := make(chan struct{})
		go func() { ss.Wait(); close(done) }()
		select {
		case <-done:
		case <-s.ctx.Done():
		}
		s.dropSession(sid)
	}()
}

func (s *Server) sessionToken(sid string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	se, ok := s.sessions[sid]
	if !ok {
		return "", false
	}
	return se.chainID, true
}

func (s *Server) handleCredentialKey(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.fail(w, r, edge.Errorf(http.StatusMethodNotAllowed, gatewayapi.ReasonMethod, "GET only"))
		return
	}
	c, err := s.certificate(r.Context())
	if err != nil {
		s.fail(w, r, edge.Wrap(http.StatusInternalServerError, gatewayapi.ReasonUnavailable, err, "certificate unavailable"))
		return
	}
	signer, ok := c.PrivateKey.(crypto.Signer)
	if !ok {
		s.fail(w, r, edge.Errorf(http.StatusInternalServerError, gatewayapi.ReasonUnavailable, "certificate key cannot sign"))
		return
	}
	pub, err := s.credKey.Publish(signer)
	if err != nil {
		s.fail(w, r, edge.Wrap(http.StatusInternalServerError, gatewayapi.ReasonUnavailable, err, "signing failed"))
		return
	}
	edge.WriteJSON(w, http.StatusOK, pub)
}

// handleCredentials accepts layer-2 credentials sealed for the caller's
// principal id (its token chain) and binds them to the caller's own MCP
// session, or for a 2026-07-28 client (no session) to its token chain.
func (s *Server) handleCredentials(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.fail(w, r, edge.Errorf(http.StatusMethodNotAllowed, gatewayapi.ReasonMethod, "POST only"))
		return
	}
	p, _ := r.Context().Value(principalKey).(*authz.Principal)
	sid := r.Header.Get("Mcp-Session-Id")
	owner, ok := s.sessionToken(sid)
	if statelessRequest(r) {
		// A 2026-07-28 client has no session: its credentials are bound
		// to its token chain alone (protocol.go).
		owner, ok = p.ChainID, true
	}
	if !ok {
		s.fail(w, r, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonUnknownSession, "unknown Mcp-Session-Id: initialize an MCP session first"))
		return
	}
	if owner != p.ChainID {
		s.fail(w, r, edge.Errorf(http.StatusForbidden, gatewayapi.ReasonForbidden, "the session belongs to another token"))
		return
	}
	body, err := s.httpEdge().ReadBody(r, credential.MaxBodySize)
	if err != nil {
		// An oversized credentials body is a 400 (docs/gateway.md).
		var e *edge.Error
		if errors.As(err, &e) {
			e.Status = http.StatusBadRequest
		}
		s.fail(w, r, err)
		return
	}
	creds, err := s.credKey.Open(body, p.ChainID)
	if err != nil {
		s.fail(w, r, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonCredentialsRejected, "credentials rejected: %v", err))
		return
	}
	s.creds.Put(p.ChainID, sid, creds, p.Expires)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.isAdmin(r) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			s.fail(w, r, edge.Errorf(http.StatusUnauthorized, gatewayapi.ReasonUnauthorized, "admin token required"))
			return
		}
		h(w, r)
	}
}

// ParseMintRequest decodes and validates a mint body. Its errors are
// *edge.Error refusals (400) with the reason code of the failed check.
func ParseMintRequest(body []byte) (*MintRequest, time.Duration, error) {
	var m MintRequest
	if err := wire.Decode(body, &m); err != nil {
		return nil, 0, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonMalformed, "mint request: %v", err)
	}
	if len(m.Tools) == 0 {
		return nil, 0, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonBadPattern, "tools: at least one pattern required")
	}
	if len(m.Tools) > MaxMintPatterns {
		return nil, 0, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonTooManyPatterns,
			"tools: %d patterns exceed the limit of %d per token (captoken.MaxPatterns)", len(m.Tools), MaxMintPatterns)
	}
	for _, p := range m.Tools {
		if p == "" || len(p) > MaxPatternLen {
			return nil, 0, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonBadPattern, "tools: pattern %q is empty or longer than %d bytes", p, MaxPatternLen)
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, 0, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonBadPattern, "tools: invalid pattern %q", p)
		}
	}
	ttl := DefaultTokenTTL
	if m.TTL != "" {
		d, err := time.ParseDuration(m.TTL)
		if err != nil {
			return nil, 0, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonBadTTL, "ttl: %v", err)
		}
		ttl = d
	}
	if ttl <= 0 || ttl > MaxTokenTTL {
		return nil, 0, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonBadTTL, "ttl must be in (0, %s]", MaxTokenTTL)
	}
	if len(m.Subject) > MaxSubjectLen {
		return nil, 0, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonBadSubject, "subject longer than %d bytes", MaxSubjectLen)
	}
	return &m, ttl, nil
}

func (s *Server) handleMint(w http.ResponseWriter, r *http.Request) {
	body, err := s.httpEdge().ReadBody(r, MaxAdminBody)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m, ttl, err := ParseMintRequest(body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := captoken.NewID()
	if err != nil {
		s.fail(w, r, edge.Wrap(http.StatusInternalServerError, gatewayapi.ReasonInternal, err, "minting failed"))
		return
	}
	exp := s.now().Add(ttl).Truncate(time.Second)
	tok, err := s.tokens.Mint(captoken.Claims{ID: id, Subject: m.Subject, Tools: m.Tools, Expires: exp})
	if err != nil {
		s.fail(w, r, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonBadRequest, "%v", err))
		return
	}
	s.log.Info("token minted", "id", id, "subject", m.Subject, "tools", m.Tools, "expires", exp)
	edge.WriteJSON(w, http.StatusOK, MintResponse{ID: id, Token: tok, Expires: exp.UTC()})
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.tokens.Revoke(r.Context(), id); err != nil {
		if errors.Is(err, authz.ErrBadID) {
			s.fail(w, r, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonBadID, "%v", err))
			return
		}
		s.fail(w, r, edge.Wrap(http.StatusInternalServerError, gatewayapi.ReasonInternal, err, "revocation not recorded"))
		return
	}
	s.log.Info("token revoked", "id", id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleApprovals(w http.ResponseWriter, r *http.Request) {
	list := s.approvals.List()
	out := make([]gatewayapi.Approval, 0, len(list))
	for _, a := range list {
		args, err := json.Marshal(a.Arguments)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out = append(out, gatewayapi.Approval{ID: a.ID, Principal: a.Principal, Tool: a.Tool, ArgumentsSHA256: a.ArgumentsSHA256,
			Arguments: args, Created: a.Created, Expires: a.Expires, Approver: a.Approver})
	}
	edge.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) handleDecide(o approval.Outcome) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.approvals.Decide(r.PathValue("id"), o, "admin"); err != nil {
			s.fail(w, r, edge.Errorf(http.StatusNotFound, gatewayapi.ReasonNotPending, "%v", err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// handleStatement takes an approver's signed decision on a held call
// (call_confirm_statement.go). It needs no bearer: the statement is signed.
func (s *Server) handleStatement(w http.ResponseWriter, r *http.Request) {
	body, err := s.httpEdge().ReadBody(r, gatewayapi.MaxStatementBody)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.decideByStatement(r.Context(), r.PathValue("id"), body); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleRevokeDerived revokes a token attenuated from the bearer's own
// (gatewayapi.RevokeDerivedRequest), without the admin: the chain id of
// that token, so it and every token derived from it stop working, and the
// bearer's own token does not. A token that is already revoked or expired
// is answered as revoked.
func (s *Server) handleRevokeDerived(w http.ResponseWriter, r *http.Request) {
	parent, _ := r.Context().Value(principalKey).(*authz.Principal)
	var req gatewayapi.RevokeDerivedRequest
	if err := s.httpEdge().DecodeJSON(r, MaxAdminBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	child, err := s.tokens.Verify(r.Context(), req.Token)
	switch {
	case errors.Is(err, captoken.ErrRevoked) || errors.Is(err, captoken.ErrExpired):
		w.WriteHeader(http.StatusNoContent)
		return
	case err != nil:
		s.fail(w, r, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonBadRequest, "token to revoke: %s", tokenErrorMessage(err)))
		return
	case !child.DerivedFrom(parent):
		s.fail(w, r, edge.Errorf(http.StatusForbidden, gatewayapi.ReasonNotDerived, "the token to revoke is not derived from yours"))
		return
	}
	if err := s.tokens.Revoke(r.Context(), child.ChainID); err != nil {
		s.fail(w, r, edge.Wrap(http.StatusInternalServerError, gatewayapi.ReasonInternal, err, "revocation not recorded"))
		return
	}
	e := audit.Entry{Type: auditTokenRevoke, Actor: "token:" + parent.TokenID, TokenChain: parent.ChainID, Principal: parent.Name(),
		Action: "token.revoke", Decision: "ok", Reason: "revoked derived chain " + child.ChainID}
	if child.Holder != "" {
		e.Reason += " (held by " + child.Holder + ")"
	}
	if err := s.appendAudit(r.Context(), e); err != nil {
		s.log.Error("audit append of a revocation failed", "err", err)
	}
	s.log.Info("derived token revoked by its parent's holder", "chain", child.ChainID, "parent", parent.ChainID)
	w.WriteHeader(http.StatusNoContent)
}

// auditTokenRevoke is the audit type of a holder's revocation of a derived
// token.
const auditTokenRevoke = "gateway.token.revoke"

func (s *Server) handlePending(w http.ResponseWriter, r *http.Request) {
	list := s.pins.Pending()
	out := make([]gatewayapi.PendingTool, 0, len(list))
	for _, p := range list {
		out = append(out, gatewayapi.PendingTool{Name: p.Name, OldSHA256: p.OldSHA256, OldDefinition: p.OldDefinition, NewSHA256: p.NewSHA256, Definition: p.Definition, Seen: p.Seen})
	}
	edge.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) handleToolApprove(w http.ResponseWriter, r *http.Request) {
	body, err := s.httpEdge().ReadBody(r, MaxAdminBody)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req ToolApproveRequest
	if len(body) == 0 {
		s.fail(w, r, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonSHA256Required, "%v", catalog.ErrSHA256Required))
		return
	}
	if err := wire.Decode(body, &req); err != nil {
		s.fail(w, r, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonMalformed, "approve request: %v", err))
		return
	}
	name := r.PathValue("name")
	if err := s.ApproveTool(r.Context(), name, req.SHA256); err != nil {
		switch {
		case errors.Is(err, catalog.ErrSHA256Required):
			s.fail(w, r, edge.Errorf(http.StatusBadRequest, gatewayapi.ReasonSHA256Required, "%v", err))
		case errors.Is(err, catalog.ErrNotPending):
			s.fail(w, r, edge.Errorf(http.StatusNotFound, gatewayapi.ReasonNotPending, "%s: %v", name, err))
		case errors.Is(err, catalog.ErrSHA256Mismatch):
			s.log.Warn("tool approval refused: the pending definition changed after review", "tool", name)
			s.fail(w, r, edge.Errorf(http.StatusConflict, gatewayapi.ReasonSHA256Mismatch, "%v", err))
		default:
			s.fail(w, r, edge.Wrap(http.StatusInternalServerError, gatewayapi.ReasonInternal, err, "approval not recorded"))
		}
		return
	}
	s.log.Info("tool definition approved", "tool", name, "sha256", req.SHA256)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	edge.WriteJSON(w, http.StatusOK, Info{Audience: s.tokens.Audience(), Tools: s.ToolNames(), Dev: s.opts.Dev})
}

// ToolNames returns the exposed names of the enabled tools, sorted.
func (s *Server) ToolNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.tools))
	for n, t := range s.tools {
		if t.enabled {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// toolState reports whether name is a known exposed tool and whether it
// is enabled.
func (s *Server) toolState(name string) (known, enabled bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tools[name]
	return t != nil, t != nil && t.enabled
}
