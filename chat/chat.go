// Package chat is the ChatMCP messaging client: it keeps a wallet's device
// keys and sessions under a home directory, signs in to a relay with
// Sign-In With Solana, verifies conversation membership, seals and opens
// end-to-end encrypted envelopes, mints stamps for strangers and manages
// consent. It imports no server code; the relay sees only ciphertext.
package chat

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/internal/keyfile"
	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/go-json-experiment/json"
)

// Options configure a Client. The zero value of each field is documented.
type Options struct {
	// Relay is the relay's base URL, e.g. https://relay.example.com. Required.
	Relay string
	// Wallet is the user's wallet (a *wallet.Keypair, or a signer for a
	// wallet held elsewhere, see Device). Required.
	Wallet wallet.Signer
	// Device is the device to store when Home holds none for Wallet yet,
	// its certificate already signed (a browser wallet signs it before the
	// client exists). If nil, a device is created and certified by Wallet.
	// A device already stored under Home is always the one used.
	Device *envelope.Device
	// Home is the directory holding client state (device keys, sessions),
	// one subdirectory per wallet. Required.
	Home string
	// HTTPClient makes requests. If nil, a client with a 60-second timeout.
	HTTPClient *http.Client
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Rand is the randomness source. If nil, crypto/rand.Reader.
	Rand io.Reader
	// MaxStampBits is the most proof-of-work the client will mint when a
	// relay asks for it. If zero, 28 (about 25 seconds of one core).
	MaxStampBits int
	// Payer, if set, pays a payment stamp (x402) to a recipient who set a
	// price, instead of minting proof of work. If nil, proof of work only.
	Payer StampPayer
	// AgentPolicy is the attestation policy an agent device's evidence
	// must satisfy before this client wraps a content key to it
	// (agents.go). If nil, the zero policy, which accepts no evidence: no
	// agent device gets a key.
	AgentPolicy *attest.Policy
	// AgentChecker verifies agent evidence. If nil, verifiers.New(nil):
	// every TEE type, offline, vendor roots embedded (sim evidence still
	// passes only a policy that allows sim).
	AgentChecker *attest.Checker
}

// Client talks to one relay as one wallet from one device.
type Client struct {
	opts    Options
	base    *url.URL
	dir     string
	device  *envelope.Device
	token   string
	history map[string][]*envelope.Conversation // verified states by conversation, index epoch-1
	senders map[string]*senderEntry             // signers' revoked devices, by wallet address
	api     *edge.Client
}

// senderEntry is what the client knows of a signer's (an envelope's sender
// or an op's signer) revoked devices.
type senderEntry struct {
	fetched time.Time
	revoked map[string]int64 // device → revocation time, Unix milliseconds
}

// New returns a client. It creates the device keys on first use (certified
// by the wallet) but does not contact the relay.
func New(opts *Options) (*Client, error) {
	if opts == nil || opts.Relay == "" || opts.Wallet == nil || opts.Home == "" {
		return nil, errors.New("chat: Relay, Wallet and Home are required")
	}
	o := *opts
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.MaxStampBits == 0 {
		o.MaxStampBits = 28
	}
	if o.AgentPolicy == nil {
		o.AgentPolicy = &attest.Policy{}
	}
	if o.AgentChecker == nil {
		o.AgentChecker = verifiers.New(nil)
	}
	base, err := url.Parse(strings.TrimSuffix(o.Relay, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("chat: relay URL %q: want http(s)://host[:port]", o.Relay)
	}
	c := &Client{opts: o, base: base, dir: filepath.Join(o.Home, o.Wallet.Address().String()), history: map[string][]*envelope.Conversation{}, senders: map[string]*senderEntry{},
		api: &edge.Client{Service: "relay", HTTP: o.HTTPClient, MaxResponse: 64 << 20}}
	if err := c.loadDevice(); err != nil {
		return nil, err
	}
	return c, nil
}

// Address is the client's wallet address.
func (c *Client) Address() wallet.Address { return c.opts.Wallet.Address() }

// Device is this client's device.
func (c *Client) Device() *envelope.Device { return c.device }

func (c *Client) loadDevice() error {
	path := filepath.Join(c.dir, "device.json")
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	// The device key is created once (keyfile: 0600, atomic, synced); two
	// clients starting at once on one home share the one written.
	data, err := keyfile.LoadOrCreate(path, func() ([]byte, error) {
		if c.opts.Device != nil {
			if err := c.opts.Device.Cert.Verify(); err != nil {
				return nil, err
			}
			return c.opts.Device.MarshalSecret()
		}
		d, err := envelope.NewDevice(c.opts.Rand, c.opts.Wallet, c.opts.Now())
		if err != nil {
			return nil, err
		}
		return d.MarshalSecret()
	})
	if err != nil {
		return fmt.Errorf("chat: device: %w", err)
	}
	d, err := envelope.ParseDevice(data)
	if err != nil {
		return fmt.Errorf("chat: %s: %w", path, err)
	}
	if !d.Cert.Wallet.Equal(c.Address()) {
		return fmt.Errorf("chat: %s belongs to another wallet", path)
	}
	c.device = d
	return nil
}

// writePrivate writes data atomically with mode 0600, creating its
// directory (keyfile.WriteAtomic).
func writePrivate(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return keyfile.WriteAtomic(path, data, keyfile.Mode)
}

type sessionFile struct {
	Relay   string `json:"relay"`
	Token   string `json:"token"`
	Expires int64  `json:"expires"`
}

func (c *Client) sessionPath() string {
	h := sha256.Sum256([]byte(c.base.String()))
	return filepath.Join(c.dir, "session-"+hex.EncodeToString(h[:6])+".json")
}

// Login signs in to the relay with a fresh Sign-In With Solana message and
// registers this device; the session is saved under Home.
func (c *Client) Login(ctx context.Context) error {
	text, err := c.LoginMessage(ctx)
	if err != nil {
		return err
	}
	return c.LoginWith(ctx, text, c.opts.Wallet.Sign([]byte(text)))
}

// LoginMessage fetches a sign-in nonce from the relay and returns the
// Sign-In With Solana text the wallet must sign for LoginWith (Login does
// both; a browser wallet signs in between).
func (c *Client) LoginMessage(ctx context.Context) (string, error) {
	var nr relayapi.NonceResponse
	if err := c.do(ctx, http.MethodPost, relayapi.PathNonce, struct{}{}, &nr, false); err != nil {
		return "", fmt.Errorf("sign-in: %w", err)
	}
	// The domain is the one we are talking to, never the one the relay
	// names: a phishing relay must not get a signature for another domain.
	if nr.Domain != c.base.Host {
		return "", fmt.Errorf("sign-in: relay at %s asks to sign in for %q", c.base.Host, nr.Domain)
	}
	now := c.opts.Now()
	m := wallet.SignInMessage{
		Domain:         c.base.Host,
		Address:        c.Address(),
		Statement:      "Sign in to the ChatMCP relay with this device.",
		URI:            c.base.String(),
		Version:        "1",
		ChainID:        nr.ChainID,
		Nonce:          nr.Nonce,
		IssuedAt:       now,
		ExpirationTime: now.Add(5 * time.Minute),
		Resources:      []string{"chatmcp:device:" + c.device.Cert.Device},
	}
	return m.String(), nil
}

// LoginWith signs in with text (from LoginMessage) and the wallet's
// signature of it, and saves the session under Home.
func (c *Client) LoginWith(ctx context.Context, text string, sig []byte) error {
	req := relayapi.LoginRequest{Message: text, Signature: sig, Device: c.device.Cert}
	var lr relayapi.LoginResponse
	if err := c.do(ctx, http.MethodPost, relayapi.PathLogin, req, &lr, false); err != nil {
		return fmt.Errorf("sign-in: %w", err)
	}
	c.token = lr.Token
	data, err := json.Marshal(sessionFile{Relay: c.base.String(), Token: lr.Token, Expires: lr.Expires})
	if err != nil {
		return err
	}
	if err := writePrivate(c.sessionPath(), data); err != nil {
		return fmt.Errorf("saving session: %w", err)
	}
	return nil
}

// session loads a saved, unexpired session or signs in.
func (c *Client) session(ctx context.Context) error {
	if c.token != "" {
		return nil
	}
	data, err := os.ReadFile(c.sessionPath())
	if err == nil {
		var sf sessionFile
		if wire.Decode(data, &sf) == nil && sf.Relay == c.base.String() && sf.Expires > c.opts.Now().Add(time.Minute).UnixMilli() {
			c.token = sf.Token
			return nil
		}
	}
	return c.Login(ctx)
}

// APIError is a refusal by the relay (internal/edge's one client error
// type). Reason is the stable code of the check that failed (a
// relayapi.Reason* constant, or ReasonHTTP when the relay sent no error
// body); callers branch on it, never on Msg. StampsNeeded reads who needs
// a stamp from a stamp_required refusal.
type APIError = edge.APIError

// ReasonHTTP is APIError.Reason for an error response without a relay
// error body (a proxy's page, a relay too old to send reasons).
const ReasonHTTP = edge.ReasonHTTP

// IsReason reports whether err is a relay refusal with one of reasons.
func IsReason(err error, reasons ...string) bool { return edge.IsReason(err, reasons...) }

// StampsNeeded returns the recipients a ReasonStampRequired refusal names,
// or nil when err is no such refusal.
func StampsNeeded(err error) []relayapi.StampNeeded {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Reason != relayapi.ReasonStampRequired {
		return nil
	}
	var e relayapi.Error
	if json.Unmarshal(ae.Body, &e) != nil {
		return nil
	}
	return e.Stamps
}

// do sends a JSON request and decodes a JSON response. With auth, a 401
// on a saved session signs in again once (on the reason code).
func (c *Client) do(ctx context.Context, method, path string, in, out any, auth bool) error {
	if !auth {
		return c.api.Do(ctx, method, c.base.String()+path, "", in, out)
	}
	if err := c.session(ctx); err != nil {
		return err
	}
	err := c.api.Do(ctx, method, c.base.String()+path, c.token, in, out)
	if IsReason(err, relayapi.ReasonSessionExpired, relayapi.ReasonUnauthorized) {
		if err := c.Login(ctx); err != nil {
			return err
		}
		return c.api.Do(ctx, method, c.base.String()+path, c.token, in, out)
	}
	return err
}
