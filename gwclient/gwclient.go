// Package gwclient is the client side of a ChatMCP gateway's HTTP surface
// other than MCP itself: deciding whether to trust the gateway's TLS
// certificate (RA-TLS under a policy, or operator pins), the admin API, and
// sealing layer-2 credentials to the gateway's attested key. It holds no
// state beyond what callers pass in.
package gwclient

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/ratls"
)

// ErrNoTrust means neither a policy nor a pins file was given, so the
// gateway's certificate cannot be checked; callers must refuse to connect.
var ErrNoTrust = errors.New("no way to verify the gateway's certificate")

// Trust says how to check the gateway's TLS certificate. RA-TLS under
// Policy wins when set; otherwise the pins file is used.
type Trust struct {
	// Verifier checks the certificate's evidence under an attestation
	// policy (full RA-TLS). If nil, PinsFile is used.
	Verifier *ratls.Verifier
	// PinsFile is a gateway data directory's tls-pins.json,
	// {"spki_sha256": [hex, ...]}, read at every handshake so a rotation is
	// picked up. Used only when Verifier is nil. If empty too, TLSConfig
	// fails with ErrNoTrust.
	PinsFile string
}

// MaxPinsFileSize caps tls-pins.json.
const MaxPinsFileSize = 64 << 10

// TLSConfig returns a TLS 1.3 client configuration enforcing t.
func (t *Trust) TLSConfig() (*tls.Config, error) {
	if t.Verifier != nil {
		return ratls.ClientConfig(t.Verifier), nil
	}
	if t.PinsFile == "" {
		return nil, ErrNoTrust
	}
	pins := t.PinsFile
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Chain and name verification are replaced, not skipped:
		// VerifyConnection below runs on every handshake (full or resumed)
		// and fails it unless the server's key is pinned.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("gateway sent no certificate")
			}
			return checkPin(pins, cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
		},
	}, nil
}

type pinsFile struct {
	SPKISHA256 []string `json:"spki_sha256"`
}

func checkPin(path string, spki []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading TLS pins: %w", err)
	}
	defer f.Close()
	var p pinsFile
	if err := wire.Read(f, MaxPinsFileSize, &p); err != nil {
		return fmt.Errorf("reading TLS pins %s: %w", path, err)
	}
	sum := sha256.Sum256(spki)
	if !slices.Contains(p.SPKISHA256, hex.EncodeToString(sum[:])) {
		return fmt.Errorf("gateway key %x is not pinned in %s", sum, path)
	}
	return nil
}
