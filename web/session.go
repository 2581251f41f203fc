package web

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/chatmcp/chatmcp/envelope"
)

// Session lifetimes. A browser session ends after sessionIdle without a
// request, and after sessionLifetime in any case: a cookie copied off a
// machine (a backup, a shared profile) stops working by itself. Either
// way the page asks for a new launch link (restart chatmcp web).
const (
	sessionIdle     = 12 * time.Hour
	sessionLifetime = 7 * 24 * time.Hour
)

// cookiePrefix starts the session cookie's name, which ends with the
// server's port. The __Host- prefix is for https only, and this server
// speaks plain HTTP on loopback, so the name is plain.
const cookiePrefix = "chatmcp_session_"

// session is one browser's session: the cookie that names it, its CSRF
// token and the wallet it is signed in as. The cookie is HttpOnly, so no
// script reads it; the device keys and the relay session stay in this
// process.
type session struct {
	id      string
	csrf    string
	created time.Time // for sessionLifetime; fixed

	// seen is the last request's time, for sessionIdle; guarded by
	// Server.mu.
	seen time.Time

	mu      sync.Mutex
	user    *user
	pending *walletSignIn // a browser wallet sign-in under way
}

// walletSignIn is a browser wallet's sign-in between its two signatures.
type walletSignIn struct {
	device   *envelope.Device
	loginMsg string
	signer   *browserSigner
}

func (se *session) current() *user {
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.user
}

func (se *session) signOut() {
	se.mu.Lock()
	defer se.mu.Unlock()
	se.user, se.pending = nil, nil
}

// checkCSRF accepts a state-changing request only with the session's CSRF
// token, in the form field csrf or the X-CSRF-Token header (for fetch).
// SameSite=Strict already keeps the cookie off cross-site requests; the
// token also covers a same-site attacker (another port on localhost).
func (se *session) checkCSRF(r *http.Request) bool {
	t := r.Header.Get("X-CSRF-Token")
	if t == "" {
		r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
		t = r.PostFormValue("csrf")
	}
	return t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(se.csrf)) == 1
}

// randomToken returns 32 random bytes, base64url.
func randomToken(rand io.Reader) (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("web: randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// session returns the request's session, or nil. An expired session
// (idle or past its lifetime) is dropped and gives nil, so its cookie gets
// the page that asks for the launch link.
func (s *Server) session(r *http.Request) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := r.Cookie(s.cookie)
	if err != nil || c.Value == "" {
		return nil
	}
	now := s.opts.Now()
	for id, se := range s.sessions {
		if subtle.ConstantTimeCompare([]byte(id), []byte(c.Value)) == 1 {
			if s.expired(se, now) {
				delete(s.sessions, id)
				return nil
			}
			se.seen = now
			return se
		}
	}
	return nil
}

// touch marks se active now, unless it expired: then it is dropped and
// touch reports false.
func (s *Server) touch(se *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	if _, ok := s.sessions[se.id]; !ok || s.expired(se, now) {
		delete(s.sessions, se.id)
		return false
	}
	se.seen = now
	return true
}

// expired reports whether se is past its idle timeout or its lifetime at
// now. s.mu is held.
func (s *Server) expired(se *session, now time.Time) bool {
	return !now.Before(se.seen.Add(sessionIdle)) || !now.Before(se.created.Add(sessionLifetime))
}

// handleLaunch redeems the one-time launch secret for a session cookie.
// A second use of the link is refused: the secret could have leaked
// (shell history, a shared screen) and only the first browser holds the
// session.
func (s *Server) handleLaunch(w http.ResponseWriter, r *http.Request) {
	if se := s.session(r); se != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	secret := r.URL.Query().Get("secret")
	s.mu.Lock()
	ok := s.launch != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(s.launch)) == 1
	if ok {
		s.launch = ""
	}
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, r, nil, "nolink", nil)
		return
	}
	id, err := randomToken(s.opts.Rand)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	csrf, err := randomToken(s.opts.Rand)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	now := s.opts.Now()
	se := &session{id: id, csrf: csrf, created: now, seen: now}
	if s.opts.Wallet != nil {
		u, err := s.signIn(r.Context(), s.opts.Wallet, nil)
		if err != nil {
			s.opts.Log.Error("signing in the configured wallet", "err", err)
		} else {
			se.user = u
		}
	}
	s.mu.Lock()
	s.sessions[id] = se
	s.mu.Unlock()
	s.mu.Lock()
	name := s.cookie
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: name, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
