package gwclient

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/internal/edge"
)

// The layer-2 credential protocol (gatewayapi, docs/gateway.md).
const (
	// CredentialKEM names the only KEM accepted.
	CredentialKEM = gatewayapi.CredentialKEM
	// MaxCredentialsSize caps the sealed plaintext.
	MaxCredentialsSize = 64 << 10
)

// CredentialKeyPath and CredentialsPath are the gateway's routes.
const (
	CredentialKeyPath = gatewayapi.PathCredentialKey
	CredentialsPath   = gatewayapi.PathCredentials
)

// FetchCredentialKey gets the gateway's HPKE key and checks that the
// certificate key of the very connection it arrived on signed it. client
// must enforce RA-TLS (Trust with a Verifier), so that certificate key is
// the attested one and the HPKE key is as attested as the TLS key.
func FetchCredentialKey(ctx context.Context, hc *http.Client, baseURL string) (hpke.PublicKey, error) {
	var ck gatewayapi.CredentialKey
	call := &edge.Call{Method: http.MethodGet, URL: strings.TrimSuffix(baseURL, "/") + CredentialKeyPath, Out: &ck}
	if err := client(hc, false).Call(ctx, call); err != nil {
		return nil, fmt.Errorf("fetching credential key: %w", err)
	}
	if call.TLS == nil || len(call.TLS.PeerCertificates) == 0 {
		return nil, errors.New("credential key must come over TLS")
	}
	return verifyCredentialKey(&ck, call.TLS.PeerCertificates[0])
}

func verifyCredentialKey(ck *gatewayapi.CredentialKey, cert *x509.Certificate) (hpke.PublicKey, error) {
	if ck.KEM != CredentialKEM {
		return nil, fmt.Errorf("credential key: unsupported KEM %q", ck.KEM)
	}
	pub, sig := ck.PublicKey, ck.Signature
	certKey, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("credential key: certificate key is %T, want ECDSA", cert.PublicKey)
	}
	digest := sha256.Sum256(append([]byte(gatewayapi.CredentialKeyContext), pub...))
	if !ecdsa.VerifyASN1(certKey, digest[:], sig) {
		return nil, errors.New("credential key: signature by the attested certificate key does not verify")
	}
	x, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	return hpke.NewDHKEMPublicKey(x)
}

// SealedCredentials is the body of POST /v1/credentials.
type SealedCredentials = gatewayapi.SealedCredentials

// SealCredentials encrypts creds to key for the principal id principal,
// the chain id of the token that will post them
// (captoken.Parse(token).ChainID()): HPKE base mode, DHKEM(X25519,
// HKDF-SHA256), HKDF-SHA256, AES-256-GCM, info = tag || principal id, so a
// ciphertext sealed for one token is useless with another, a token
// attenuated from it included.
func SealCredentials(key hpke.PublicKey, principal string, creds map[string]string) (*SealedCredentials, error) {
	pt, err := json.Marshal(creds)
	if err != nil {
		return nil, err
	}
	if len(pt) > MaxCredentialsSize {
		return nil, fmt.Errorf("credentials of %d bytes exceed %d", len(pt), MaxCredentialsSize)
	}
	enc, s, err := hpke.NewSender(key, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(gatewayapi.CredentialInfoContext+principal))
	if err != nil {
		return nil, fmt.Errorf("sealing credentials: %w", err)
	}
	ct, err := s.Seal(nil, pt)
	if err != nil {
		return nil, fmt.Errorf("sealing credentials: %w", err)
	}
	return &SealedCredentials{Enc: enc, Ciphertext: ct}, nil
}

// PostCredentials sends sealed credentials for the MCP session sessionID,
// authorized by token.
func PostCredentials(ctx context.Context, hc *http.Client, baseURL, token, sessionID string, sc *SealedCredentials) error {
	return postCredentials(ctx, hc, baseURL, token, http.Header{"Mcp-Session-Id": {sessionID}}, sc)
}

// PostCredentialsStateless sends sealed credentials for a client of the
// stateless MCP protocol (version, 2026-07-28 or later), which has no
// session: the gateway binds them to the token's chain.
func PostCredentialsStateless(ctx context.Context, hc *http.Client, baseURL, token, version string, sc *SealedCredentials) error {
	return postCredentials(ctx, hc, baseURL, token, http.Header{"Mcp-Protocol-Version": {version}}, sc)
}

func postCredentials(ctx context.Context, hc *http.Client, baseURL, token string, h http.Header, sc *SealedCredentials) error {
	err := client(hc, false).Call(ctx, &edge.Call{Method: http.MethodPost, URL: strings.TrimSuffix(baseURL, "/") + CredentialsPath,
		Token: token, Header: h, In: sc})
	if err != nil {
		return fmt.Errorf("posting credentials: %w", err)
	}
	return nil
}
