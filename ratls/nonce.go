package ratls

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/internal/edge"
)

// AttestationPath is where AttestationHandler is meant to be mounted.
const AttestationPath = "/.well-known/chatmcp/attestation"

// Reason codes of the attestation endpoint's error bodies
// ({"error", "reason"}, as every ChatMCP service answers).
const (
	ReasonMethod      = "method_not_allowed"      // not a GET
	ReasonBadNonce    = "bad_nonce"               // missing, repeated, not hex, or outside the size bounds
	ReasonUnavailable = "attestation_unavailable" // the key or the attester failed; the cause is logged
)

// Nonce length bounds, in bytes. 16 bytes of randomness make a nonce
// unguessable; the upper bound keeps the query string small.
const (
	MinNonceSize = 16
	MaxNonceSize = 64
)

// AttestationHandler serves GET AttestationPath?nonce=HEX with fresh evidence
// (a JSON envelope) whose report data is
// attest.BindReportData(attest.TagNonce, nonce, spki), spki being the DER
// SubjectPublicKeyInfo keyfunc returns (for an Issuer, its SPKI method).
// A client on an RA-TLS connection thereby learns that the key it is talking
// to is held by attested code now, not only when the certificate was made.
// Each request costs one attestation; rate-limit the route on real hardware.
// Refusals are JSON error bodies with a Reason* code; internal causes are
// logged (slog's default logger), never sent.
func AttestationHandler(a attest.Attester, keyfunc func(context.Context) ([]byte, error)) http.Handler {
	e := &edge.Server{Name: "attestation", Codes: edge.Codes{Malformed: ReasonBadNonce, TooLarge: ReasonBadNonce, Internal: ReasonUnavailable}}
	unavailable := func(cause error) error {
		return edge.Wrap(http.StatusInternalServerError, ReasonUnavailable, cause, "attestation unavailable")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			e.WriteError(w, r, edge.Errorf(http.StatusMethodNotAllowed, ReasonMethod, "method not allowed: use GET"))
			return
		}
		nonce, err := parseNonce(r.URL.Query())
		if err != nil {
			e.WriteError(w, r, edge.Errorf(http.StatusBadRequest, ReasonBadNonce, "%v", err))
			return
		}
		spki, err := keyfunc(r.Context())
		if err != nil {
			e.WriteError(w, r, unavailable(fmt.Errorf("certificate key: %w", err)))
			return
		}
		rd, err := attest.BindReportData(attest.TagNonce, nonce, spki)
		if err != nil {
			e.WriteError(w, r, unavailable(fmt.Errorf("report data: %w", err)))
			return
		}
		ev, err := a.Attest(r.Context(), rd)
		if err != nil {
			e.WriteError(w, r, unavailable(fmt.Errorf("attesting: %w", err)))
			return
		}
		b, err := json.Marshal(ev)
		if err != nil {
			e.WriteError(w, r, unavailable(fmt.Errorf("encoding evidence: %w", err)))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
	})
}

func parseNonce(q url.Values) ([]byte, error) {
	vs := q["nonce"]
	if len(vs) != 1 {
		return nil, fmt.Errorf("want exactly one nonce parameter")
	}
	s := vs[0]
	if len(s) < 2*MinNonceSize || len(s) > 2*MaxNonceSize {
		return nil, fmt.Errorf("nonce must be %d to %d bytes of hex", MinNonceSize, MaxNonceSize)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("nonce is not hex")
	}
	return b, nil
}

// CheckFresh asks the server at baseURL (https://host:port) for evidence
// over a new random nonce and checks it under v's policy, bound to the key
// of the very TLS connection the answer arrived on. client must use an
// RA-TLS configuration (ClientConfig); if nil, one is built from v.
// A mismatch can also mean the server rotated its key between handshake and
// request; callers may retry once on a fresh connection.
func (v *Verifier) CheckFresh(ctx context.Context, client *http.Client, baseURL string) (*attest.Claims, error) {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: ClientConfig(v)}}
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("ratls: nonce: %w", err)
	}
	u := strings.TrimSuffix(baseURL, "/") + AttestationPath + "?nonce=" + hex.EncodeToString(nonce)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("ratls: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ratls: fetching fresh evidence: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var eb edge.ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(b, &eb) == nil && eb.Reason != "" {
			return nil, fmt.Errorf("ratls: fetching fresh evidence: %s (%s): %s", resp.Status, eb.Reason, eb.Error)
		}
		return nil, fmt.Errorf("ratls: fetching fresh evidence: %s", resp.Status)
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return nil, fmt.Errorf("ratls: fresh evidence must come over TLS")
	}
	cert := resp.TLS.PeerCertificates[0]
	// The connection's certificate must itself pass, so the key the nonce
	// evidence binds is one we verified (cached after the handshake).
	if _, err := v.VerifyCertificate(ctx, cert); err != nil {
		return nil, err
	}
	// ParseEnvelope rejects anything over MaxEnvelopeSize; reading one byte
	// more than that is enough to tell.
	body, err := io.ReadAll(io.LimitReader(resp.Body, attest.MaxEnvelopeSize+1))
	if err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "ratls: reading fresh evidence: %w", err)
	}
	ev, err := attest.ParseEnvelope(body)
	if err != nil {
		return nil, err
	}
	rd, err := attest.BindReportData(attest.TagNonce, nonce, cert.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, attest.Errorf(attest.CheckMalformed, "ratls: %w", err)
	}
	return v.checker.Check(ctx, ev, v.policy, &attest.CheckOptions{Now: v.now(), ReportData: rd[:], Warn: v.warn})
}
