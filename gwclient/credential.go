package gwclient

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Domain tags of the layer-2 credential protocol (docs: GATEWAY_CONTRACT,
// docs/gateway-tokens.md). Each use has its own tag so no signature or
// ciphertext can be replayed in another role.
const (
	credentialKeyTag  = "chatmcp/gateway/credential-key/v1\x00"
	credentialInfoTag = "chatmcp/gateway/credential/v2\x00"
	// CredentialKEM names the only KEM accepted.
	CredentialKEM = "DHKEM(X25519, HKDF-SHA256)"
	// MaxCredentialsSize caps the sealed plaintext.
	MaxCredentialsSize = 64 << 10
)

// CredentialKeyPath and CredentialsPath are the gateway's routes.
const (
	CredentialKeyPath = "/.well-known/chatmcp/credential-key"
	CredentialsPath   = "/v1/credentials"
)

type credentialKey struct {
	KEM       string `json:"kem"`
	PublicKey string `json:"public_key"`
	Signature string `json:"signature"`
}

// FetchCredentialKey gets the gateway's HPKE key and checks that the
// certificate key of the very connection it arrived on signed it. client
// must enforce RA-TLS (Trust with a Verifier), so that certificate key is
// the attested one and the HPKE key is as attested as the TLS key.
func FetchCredentialKey(ctx context.Context, client *http.Client, baseURL string) (hpke.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(baseURL, "/")+CredentialKeyPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching credential key: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching credential key: %w", readHTTPError(resp))
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return nil, errors.New("credential key must come over TLS")
	}
	var ck credentialKey
	if err := readStrict(resp, &ck); err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	return verifyCredentialKey(&ck, resp.TLS.PeerCertificates[0])
}

func verifyCredentialKey(ck *credentialKey, cert *x509.Certificate) (hpke.PublicKey, error) {
	if ck.KEM != CredentialKEM {
		return nil, fmt.Errorf("credential key: unsupported KEM %q", ck.KEM)
	}
	pub, err := base64.StdEncoding.DecodeString(ck.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("credential key: public_key: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(ck.Signature)
	if err != nil {
		return nil, fmt.Errorf("credential key: signature: %w", err)
	}
	certKey, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("credential key: certificate key is %T, want ECDSA", cert.PublicKey)
	}
	digest := sha256.Sum256(append([]byte(credentialKeyTag), pub...))
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
type SealedCredentials struct {
	Enc        []byte `json:"enc"`
	Ciphertext []byte `json:"ciphertext"`
}

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
	enc, s, err := hpke.NewSender(key, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(credentialInfoTag+principal))
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
func PostCredentials(ctx context.Context, client *http.Client, baseURL, token, sessionID string, sc *SealedCredentials) error {
	b, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(baseURL, "/")+CredentialsPath, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", sessionID)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("posting credentials: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("posting credentials: %w", readHTTPError(resp))
	}
	return nil
}
