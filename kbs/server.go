package kbs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/kbsapi"
)

// Auditor records decisions. *audit.Log implements it. Append must be
// durable when it returns nil; on error the server releases nothing.
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) error
}

// Options configure a Server.
type Options struct {
	// Storage holds secrets and nonces. Required.
	Storage *Storage
	// Sealer wraps data keys. Required.
	Sealer Sealer
	// Checker verifies evidence. Required.
	Checker *attest.Checker
	// Audit records every admin action and release decision. Required.
	Audit Auditor
	// AdminToken is the bearer token of the admin API. If empty, the admin
	// API refuses every request.
	AdminToken string
	// Dev accepts simulated evidence when a secret's policy allows it. If
	// false, sim evidence is refused whatever the policy says.
	Dev bool
	// NonceTTL is how long a nonce may be redeemed. If zero,
	// DefaultNonceTTL.
	NonceTTL time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Logger receives operational logs (never secret values). If nil,
	// slog.Default().
	Logger *slog.Logger
}

// Server is the KBS HTTP API. It is safe for concurrent use and keeps all
// shared state in Storage, so replicas on one database serve the same
// secrets.
type Server struct {
	opts  Options
	token [32]byte
	mux   *http.ServeMux
	edge  *edge.Server
}

// NewServer returns a Server. It fails when a required option is missing.
func NewServer(opts *Options) (*Server, error) {
	if opts == nil || opts.Storage == nil || opts.Sealer == nil || opts.Checker == nil || opts.Audit == nil {
		return nil, errors.New("kbs: Storage, Sealer, Checker and Audit are required")
	}
	s := &Server{opts: *opts}
	if s.opts.NonceTTL <= 0 {
		s.opts.NonceTTL = DefaultNonceTTL
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	if s.opts.Logger == nil {
		s.opts.Logger = slog.Default()
	}
	s.token = sha256.Sum256([]byte(opts.AdminToken))
	s.edge = &edge.Server{Name: "kbs", Codes: codes, Logger: s.opts.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+kbsapi.PathRequest, s.handleRequest)
	mux.HandleFunc("POST "+kbsapi.PathAttest, s.handleAttest)
	mux.HandleFunc("GET "+kbsapi.PathAdminSecrets, s.admin(s.handleList))
	mux.HandleFunc("PUT "+kbsapi.PathAdminSecrets+"/{name}", s.admin(s.handlePut))
	mux.HandleFunc("PUT "+kbsapi.PathAdminSecrets+"/{name}/policy", s.admin(s.handlePolicy))
	mux.HandleFunc("POST "+kbsapi.PathAdminSecrets+"/{name}/revoke", s.admin(s.handleRevoke))
	s.mux = mux
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// codes are the KBS's reason codes for the refusals the HTTP edge
// (internal/edge) makes itself. Every refusal is an *edge.Error whose
// reason is a kbsapi.Reason word (documented in docs/kbs.md) or an
// attest.Check word; any other error is internal: logged, and reported to
// the client without its cause.
var codes = edge.Codes{
	Malformed: kbsapi.ReasonMalformed,
	TooLarge:  kbsapi.ReasonTooLarge,
	Internal:  kbsapi.ReasonInternal,
}

var errAudit = edge.Errorf(http.StatusServiceUnavailable, kbsapi.ReasonAudit, "audit log unavailable: nothing was released or changed")

// fail writes err as a kbsapi.ErrorBody (internal/edge).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.edge.WriteError(w, r, err)
}

// DecodeChallengeRequest parses a POST /kbs/v1/request body.
func DecodeChallengeRequest(b []byte) (*kbsapi.ChallengeRequest, error) {
	var req kbsapi.ChallengeRequest
	if err := wire.Decode(b, &req); err != nil {
		return nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonMalformed, "malformed request: %v", err)
	}
	if !kbsapi.ValidName(req.Secret) {
		return nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonMalformed, "invalid secret name")
	}
	if !req.TEE.Valid() {
		return nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonUnknownTEE, "unknown TEE type %q", req.TEE)
	}
	return &req, nil
}

// DecodeAttestRequest parses a POST /kbs/v1/attest body.
func DecodeAttestRequest(b []byte) (*kbsapi.AttestRequest, error) {
	var req kbsapi.AttestRequest
	if err := wire.Decode(b, &req); err != nil {
		return nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonMalformed, "malformed request: %v", err)
	}
	switch {
	case !kbsapi.ValidName(req.Secret):
		return nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonMalformed, "invalid secret name")
	case len(req.Nonce) != kbsapi.NonceSize:
		return nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonMalformed, "nonce is %d bytes, want %d", len(req.Nonce), kbsapi.NonceSize)
	case req.Evidence == nil:
		return nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonMalformed, "no evidence")
	}
	if _, err := kbsapi.HPKEKEM().NewPublicKey(req.PublicKey); err != nil {
		return nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonMalformed, "public_key is not an X25519 public key")
	}
	if !req.Evidence.TEE.Valid() {
		return nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonUnknownTEE, "unknown TEE type %q", req.Evidence.TEE)
	}
	if err := req.Evidence.Validate(); err != nil {
		return nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonMalformed, "%v", err)
	}
	return &req, nil
}

func (s *Server) handleRequest(w http.ResponseWriter, r *http.Request) {
	b, err := s.edge.ReadBody(r, kbsapi.MaxRequestBody)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := DecodeChallengeRequest(b)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if req.TEE == attest.Sim && !s.opts.Dev {
		s.fail(w, r, edge.Errorf(http.StatusForbidden, kbsapi.ReasonSimRefused, "simulated evidence is not accepted: this KBS is not in --dev mode"))
		return
	}
	nonce := make([]byte, kbsapi.NonceSize)
	rand.Read(nonce)
	now := s.opts.Now()
	exp := now.Add(s.opts.NonceTTL)
	if err := s.opts.Storage.issueNonce(r.Context(), nonce, req.Secret, string(req.TEE), now, exp); err != nil {
		s.fail(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, kbsapi.Challenge{Nonce: nonce, Expires: exp.UTC()})
}

func (s *Server) handleAttest(w http.ResponseWriter, r *http.Request) {
	start := s.opts.Now()
	b, err := s.edge.ReadBody(r, kbsapi.MaxAttestBody)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := DecodeAttestRequest(b)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rel, err := s.attest(r.Context(), req, clientOf(r), start)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, rel)
}

func clientOf(r *http.Request) string { return r.RemoteAddr }

// attest runs one release decision: consume the nonce, check it, verify the
// evidence against the secret's policy with the binding, audit, and only
// then seal the value to the client's key.
func (s *Server) attest(ctx context.Context, req *kbsapi.AttestRequest, client string, start time.Time) (*kbsapi.Release, error) {
	entry := audit.Entry{Type: "kbs.release", Action: "release", Actor: client, Secret: req.Secret, TEE: string(req.Evidence.TEE)}
	deny := func(rf *edge.Error) error {
		entry.Decision, entry.Reason = "denied", rf.Reason+": "+rf.Msg
		entry.DurationMS = ms(s.opts.Now().Sub(start))
		if err := s.opts.Audit.Append(ctx, entry); err != nil {
			s.opts.Logger.Error("kbs: audit append failed", "err", err)
			return errAudit
		}
		return rf
	}
	rec, err := s.opts.Storage.consumeNonce(ctx, req.Nonce)
	if errors.Is(err, ErrNonceUsed) {
		return nil, deny(edge.Errorf(http.StatusForbidden, kbsapi.ReasonNonce, "nonce unknown or already used"))
	}
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	switch {
	case !now.Before(rec.Expires):
		return nil, deny(edge.Errorf(http.StatusForbidden, kbsapi.ReasonExpired, "nonce expired at %s", rec.Expires.UTC().Format(time.RFC3339)))
	case rec.Secret != req.Secret:
		return nil, deny(edge.Errorf(http.StatusForbidden, kbsapi.ReasonWrongSecret, "nonce was issued for another secret"))
	case rec.TEE != string(req.Evidence.TEE):
		return nil, deny(edge.Errorf(http.StatusForbidden, kbsapi.ReasonWrongTEE, "nonce was issued for %s evidence, got %s", rec.TEE, req.Evidence.TEE))
	case req.Evidence.TEE == attest.Sim && !s.opts.Dev:
		return nil, deny(edge.Errorf(http.StatusForbidden, kbsapi.ReasonSimRefused, "simulated evidence is not accepted: this KBS is not in --dev mode"))
	}
	rd, err := kbsapi.ExpectedReportData(req.Nonce, req.PublicKey)
	if err != nil {
		return nil, err
	}
	return s.release(ctx, req, rd[:], &entry, deny, start)
}

// release loads the secret, checks the evidence against its policy with
// expected report data rd (not checked if nil: benchmarks only), audits
// and seals.
func (s *Server) release(ctx context.Context, req *kbsapi.AttestRequest, rd []byte, entry *audit.Entry, deny func(*edge.Error) error, start time.Time) (*kbsapi.Release, error) {
	sec, err := s.opts.Storage.current(ctx, req.Secret)
	if errors.Is(err, ErrNotFound) {
		return nil, deny(edge.Errorf(http.StatusNotFound, kbsapi.ReasonNotFound, "no secret named %q", req.Secret))
	}
	if err != nil {
		return nil, err
	}
	entry.Version, entry.PolicySHA256 = sec.Version, sec.PolicySHA256
	if sec.Revoked {
		return nil, deny(edge.Errorf(http.StatusForbidden, kbsapi.ReasonRevoked, "secret %q is revoked", req.Secret))
	}
	pol, err := attest.ParsePolicy([]byte(sec.Policy))
	if err != nil {
		return nil, fmt.Errorf("stored policy of %s: %w", req.Secret, err)
	}
	claims, err := s.opts.Checker.Check(ctx, req.Evidence, pol, &attest.CheckOptions{Now: s.opts.Now(), ReportData: rd})
	if err != nil {
		check, _ := attest.CheckOf(err)
		return nil, deny(edge.Errorf(http.StatusForbidden, string(check), "%v", err))
	}
	entry.Measurement = hex.EncodeToString(claims.Measurement)
	value, err := decryptValue(ctx, s.opts.Sealer, sec.Name, sec.Version, sec.WrappedKey, sec.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("decrypting %s v%d: %w", sec.Name, sec.Version, err)
	}
	defer clear(value)
	pk, err := kbsapi.HPKEKEM().NewPublicKey(req.PublicKey)
	if err != nil {
		return nil, deny(edge.Errorf(http.StatusBadRequest, kbsapi.ReasonMalformed, "public_key is not an X25519 public key"))
	}
	sealed, err := hpkeSeal(pk, kbsapi.ReleaseInfo(sec.Name, sec.Version, req.Nonce), value)
	if err != nil {
		return nil, err
	}
	entry.Decision = "granted"
	entry.DurationMS = ms(s.opts.Now().Sub(start))
	if err := s.opts.Audit.Append(ctx, *entry); err != nil {
		s.opts.Logger.Error("kbs: audit append failed; not releasing", "secret", sec.Name, "err", err)
		return nil, errAudit
	}
	return &kbsapi.Release{Name: sec.Name, Version: sec.Version, Enc: sealed[:kbsapi.EncSize], Ciphertext: sealed[kbsapi.EncSize:]}, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// admin wraps an admin handler with bearer-token authentication. The token
// is compared as SHA-256 digests in constant time, so neither its length
// nor its content leaks through timing.
func (s *Server) admin(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, err := edge.Bearer(r)
		got := sha256.Sum256([]byte(tok))
		if err != nil || s.opts.AdminToken == "" || subtle.ConstantTimeCompare(got[:], s.token[:]) != 1 {
			s.fail(w, r, edge.Errorf(http.StatusUnauthorized, kbsapi.ReasonUnauthorized, "missing or wrong admin token"))
			return
		}
		h(w, r)
	}
}

func (s *Server) secretName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !kbsapi.ValidName(name) {
		return "", edge.Errorf(http.StatusBadRequest, kbsapi.ReasonMalformed, "invalid secret name")
	}
	return name, nil
}

// DecodePutRequest parses a PUT /kbs/v1/admin/secrets/NAME body.
func DecodePutRequest(b []byte) (*kbsapi.PutRequest, *attest.Policy, error) {
	var req kbsapi.PutRequest
	if err := wire.Decode(b, &req); err != nil {
		return nil, nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonMalformed, "malformed request: %v", err)
	}
	if len(req.Value) == 0 || len(req.Value) > kbsapi.MaxSecretSize {
		return nil, nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonMalformed, "value must be 1..%d bytes", kbsapi.MaxSecretSize)
	}
	pol, err := attest.ParsePolicy([]byte(req.Policy))
	if err != nil {
		return nil, nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonBadPolicy, "%v", err)
	}
	return &req, pol, nil
}

// DecodePolicyRequest parses a PUT /kbs/v1/admin/secrets/NAME/policy body.
func DecodePolicyRequest(b []byte) (*kbsapi.PolicyRequest, *attest.Policy, error) {
	var req kbsapi.PolicyRequest
	if err := wire.Decode(b, &req); err != nil {
		return nil, nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonMalformed, "malformed request: %v", err)
	}
	pol, err := attest.ParsePolicy([]byte(req.Policy))
	if err != nil {
		return nil, nil, edge.Errorf(http.StatusBadRequest, kbsapi.ReasonBadPolicy, "%v", err)
	}
	return &req, pol, nil
}

func (s *Server) adminEntry(r *http.Request, action, name string) audit.Entry {
	return audit.Entry{Type: "kbs.admin", Actor: "admin@" + clientOf(r), Action: action, Secret: name, Decision: "ok"}
}

func (s *Server) handlePut(w http.ResponseWriter, r *http.Request) {
	name, err := s.secretName(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := s.edge.ReadBody(r, kbsapi.MaxAdminBody)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req, _, err := DecodePutRequest(b)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer clear(req.Value)
	ctx := r.Context()
	e := s.adminEntry(r, "secret.put", name)
	e.PolicySHA256 = policyDigest(req.Policy)
	version, err := s.opts.Storage.put(ctx, name, req.Policy, s.opts.Now(),
		func(v int) ([]byte, []byte, error) { return encryptValue(ctx, s.opts.Sealer, name, v, req.Value) },
		func(v int) error { e.Version = v; return s.auditAdmin(ctx, e) })
	if err != nil {
		s.fail(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, kbsapi.SecretInfo{Name: name, Version: version, PolicySHA256: e.PolicySHA256})
}

// auditAdmin appends an admin entry inside the change's transaction: when
// it fails, the change is rolled back.
func (s *Server) auditAdmin(ctx context.Context, e audit.Entry) error {
	if err := s.opts.Audit.Append(ctx, e); err != nil {
		s.opts.Logger.Error("kbs: audit append failed; rolling back", "action", e.Action, "err", err)
		return errAudit
	}
	return nil
}

func (s *Server) handlePolicy(w http.ResponseWriter, r *http.Request) {
	name, err := s.secretName(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := s.edge.ReadBody(r, kbsapi.MaxAdminBody)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req, _, err := DecodePolicyRequest(b)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	e := s.adminEntry(r, "secret.policy", name)
	e.PolicySHA256 = policyDigest(req.Policy)
	v, err := s.opts.Storage.update(r.Context(), name, &req.Policy, false, s.opts.Now(),
		func(v int) error { e.Version = v; return s.auditAdmin(r.Context(), e) })
	if err != nil {
		s.fail(w, r, notFound(err, name))
		return
	}
	edge.WriteJSON(w, http.StatusOK, kbsapi.SecretInfo{Name: name, Version: v, PolicySHA256: e.PolicySHA256})
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	name, err := s.secretName(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	e := s.adminEntry(r, "secret.revoke", name)
	v, err := s.opts.Storage.update(r.Context(), name, nil, true, s.opts.Now(),
		func(v int) error { e.Version = v; return s.auditAdmin(r.Context(), e) })
	if err != nil {
		s.fail(w, r, notFound(err, name))
		return
	}
	edge.WriteJSON(w, http.StatusOK, kbsapi.SecretInfo{Name: name, Version: v, Revoked: true})
}

func notFound(err error, name string) error {
	if errors.Is(err, ErrNotFound) {
		return edge.Errorf(http.StatusNotFound, kbsapi.ReasonNotFound, "no secret named %q", name)
	}
	return err
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	list, err := s.opts.Storage.list(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, kbsapi.SecretList{Secrets: list})
}
