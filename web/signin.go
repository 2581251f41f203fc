package web

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-json-experiment/json"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/wallet"
)

// browserSigner stands for a wallet held by the browser (Phantom or any
// Wallet Standard wallet). It signs nothing itself: the wallet signs the
// two messages of a sign-in through the page, and when the relay session
// expires the person signs in again.
type browserSigner struct{ addr wallet.Address }

func (b *browserSigner) Address() wallet.Address { return b.addr }
func (b *browserSigner) Sign([]byte) []byte      { return nil }

// chatClient returns a chat client for signer under the shared home.
func (s *Server) chatClient(signer wallet.Signer, device *envelope.Device) (*chat.Client, error) {
	return chat.New(&chat.Options{Relay: s.opts.Relay, Wallet: signer, Device: device, Home: s.opts.Home,
		HTTPClient: s.opts.HTTPClient, Now: s.opts.Now, Rand: s.opts.Rand, MaxStampBits: s.opts.MaxStampBits, AgentPolicy: s.opts.AgentPolicy})
}

// signIn returns the signed-in user for signer, starting its relay
// watcher on first use. With a keypair it signs in to the relay itself;
// a browser wallet's client has signed in already.
func (s *Server) signIn(ctx context.Context, signer wallet.Signer, c *chat.Client) (*user, error) {
	if c == nil {
		var err error
		if c, err = s.chatClient(signer, nil); err != nil {
			return nil, err
		}
		if err := c.Login(ctx); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[signer.Address().String()]; u != nil {
		u.replaceClient(c)
		return u, nil
	}
	watcher, err := s.chatClient(signer, nil)
	if err != nil {
		return nil, err
	}
	u := newUser(s, c, watcher)
	s.users[signer.Address().String()] = u
	go u.watch(s.ctx)
	return u, nil
}

// handleKeypairSignIn signs in with a solana-keygen keypair file named by
// its path on this machine: the key is read by this process and never
// passes through the browser.
func (s *Server) handleKeypairSignIn(w http.ResponseWriter, r *http.Request, sess *session) {
	path := strings.TrimSpace(r.PostFormValue("keypair"))
	fail := func(msg string) {
		w.WriteHeader(http.StatusBadRequest)
		s.renderPage(w, sess, "signin", &page{Error: msg})
	}
	if path == "" {
		fail("Enter the path of a keypair file (made by solana-keygen or chatmcp wallet new).")
		return
	}
	k, err := wallet.LoadFile(path)
	if err != nil {
		fail("That keypair file cannot be used: " + err.Error())
		return
	}
	u, err := s.signIn(r.Context(), k, nil)
	if err != nil {
		fail("Sign-in failed: " + err.Error())
		return
	}
	sess.mu.Lock()
	sess.user, sess.pending = u, nil
	sess.mu.Unlock()
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// The browser wallet sign-in is three requests, each with the CSRF header:
//
//	start  {address}        → {message: the device certificate's SIWS text}
//	cert   {signature}      → {message: the relay sign-in SIWS text}
//	finish {signature}      → {}
//
// The server makes the device keys and both messages and verifies both
// signatures; the wallet only signs. The wallet's key never leaves it.
type walletStartRequest struct {
	Address wallet.Address `json:"address"`
}

type walletSignRequest struct {
	Signature string `json:"signature"` // base64 (standard) ed25519 signature
}

type walletMessage struct {
	Message string `json:"message"`
}

type jsonError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(v)
	w.Write(b)
}

func readJSON(r *http.Request, v any) error {
	body, err := readLimited(r, 16<<10)
	if err != nil {
		return err
	}
	return wire.Decode(body, v)
}

func readLimited(r *http.Request, n int64) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(nil, r.Body, n))
}

func (s *Server) handleWalletStart(w http.ResponseWriter, r *http.Request, sess *session) {
	var req walletStartRequest
	if err := readJSON(r, &req); err != nil || req.Address.IsZero() {
		writeJSON(w, http.StatusBadRequest, jsonError{"malformed request: want {\"address\": BASE58}"})
		return
	}
	d, err := envelope.NewUncertifiedDevice(s.opts.Rand, req.Address, s.opts.Now())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, jsonError{err.Error()})
		return
	}
	sess.mu.Lock()
	sess.pending = &walletSignIn{device: d, signer: &browserSigner{addr: req.Address}}
	sess.mu.Unlock()
	writeJSON(w, http.StatusOK, walletMessage{Message: d.Cert.Message()})
}

func decodeSig(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 64 {
		return nil, errors.New("signature is not 64 bytes of base64")
	}
	return b, nil
}

func (s *Server) handleWalletCert(w http.ResponseWriter, r *http.Request, sess *session) {
	var req walletSignRequest
	if err := readJSON(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, jsonError{"malformed request"})
		return
	}
	sig, err := decodeSig(req.Signature)
	sess.mu.Lock()
	p := sess.pending
	sess.mu.Unlock()
	if p == nil || p.loginMsg != "" {
		writeJSON(w, http.StatusConflict, jsonError{"no wallet sign-in under way: start again"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, jsonError{err.Error()})
		return
	}
	p.device.Cert.Sig = sig
	if err := p.device.Cert.Verify(); err != nil {
		writeJSON(w, http.StatusBadRequest, jsonError{"the wallet's signature of the device certificate does not verify"})
		return
	}
	c, err := s.chatClient(p.signer, p.device)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, jsonError{err.Error()})
		return
	}
	msg, err := c.LoginMessage(r.Context())
	if err != nil {
		writeJSON(w, http.StatusBadGateway, jsonError{err.Error()})
		return
	}
	sess.mu.Lock()
	p.loginMsg = msg
	sess.mu.Unlock()
	writeJSON(w, http.StatusOK, walletMessage{Message: msg})
}

func (s *Server) handleWalletFinish(w http.ResponseWriter, r *http.Request, sess *session) {
	var req walletSignRequest
	if err := readJSON(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, jsonError{"malformed request"})
		return
	}
	sess.mu.Lock()
	p := sess.pending
	sess.pending = nil
	sess.mu.Unlock()
	if p == nil || p.loginMsg == "" {
		writeJSON(w, http.StatusConflict, jsonError{"no wallet sign-in under way: start again"})
		return
	}
	sig, err := decodeSig(req.Signature)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, jsonError{err.Error()})
		return
	}
	if !p.signer.addr.Verify([]byte(p.loginMsg), sig) {
		writeJSON(w, http.StatusBadRequest, jsonError{"the wallet's signature of the sign-in message does not verify"})
		return
	}
	// The client loads the device stored under Home for this wallet (the
	// one the login message names), or stores the one just certified.
	c, err := s.chatClient(p.signer, p.device)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, jsonError{err.Error()})
		return
	}
	if err := c.LoginWith(r.Context(), p.loginMsg, sig); err != nil {
		writeJSON(w, http.StatusBadGateway, jsonError{fmt.Sprintf("the relay refused the sign-in: %v", err)})
		return
	}
	u, err := s.signIn(r.Context(), p.signer, c)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, jsonError{err.Error()})
		return
	}
	sess.mu.Lock()
	sess.user = u
	sess.mu.Unlock()
	writeJSON(w, http.StatusOK, struct{}{})
}
