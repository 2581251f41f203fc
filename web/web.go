// Package web is `chatmcp web`: a local web app on loopback, run by the
// process that holds the user's device keys, that serves server-rendered
// pages behind a one-time launch secret, an HttpOnly session cookie, CSRF
// tokens, a Host check and a strict Content-Security-Policy.
package web

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/wallet"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a Server. The zero value of each field is documented.
type Options struct {
	// Relay is the messaging relay's base URL. Required.
	Relay string
	// Home is the chat client's state directory (device keys, sessions, one
	// subdirectory per wallet), the one `chatmcp chat --home` uses.
	// Required.
	Home string
	// Wallet, if set, signs the first session in as this wallet (`chatmcp
	// dev` starts one server per user this way). If nil, the page asks for
	// a keypair file or a browser wallet.
	Wallet *wallet.Keypair
	// Admin is the gateway admin client behind the admin pages. If nil,
	// the admin pages say that no gateway admin token is configured.
	Admin *gwclient.Admin
	// AuditFile is the gateway's audit log (JSON Lines) the admin pages
	// verify and browse. If empty, the audit section is not shown.
	AuditFile string
	// PolicyFile is the attestation policy the attestation viewer uses
	// when the form names none, and the one the gateway must satisfy when
	// approval statements and revocations are delivered to it. If empty,
	// the viewer allows hardware TEEs with any measurement, never the
	// simulator, and no statement is delivered.
	PolicyFile string
	// AgentPolicy is the attestation policy an assistant's evidence must
	// satisfy to be invited and to get message keys (chat.Options
	// .AgentPolicy). If nil, no assistant passes: none is invited and
	// messages are not encrypted to any.
	AgentPolicy *attest.Policy
	// Token is the user's own gateway token, from which grants to
	// assistants are derived and with which they are revoked. If empty,
	// the invite and remove forms ask for it.
	Token string
	// HTTPClient reaches the relay and attestation targets. If nil, a
	// client with a 60-second timeout.
	HTTPClient *http.Client
	// MaxStampBits is passed to the chat client. If zero, the client's
	// default.
	MaxStampBits int
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Rand is the randomness source. If nil, crypto/rand.Reader.
	Rand io.Reader
	// Log receives operational logs. If nil, nothing is logged.
	Log *slog.Logger
}

// Server is the web app. It serves one listener (Serve), whose address it
// accepts as the only Host.
type Server struct {
	opts   Options
	tmpl   map[string]*template.Template
	static http.Handler

	mu       sync.Mutex
	launch   string              // one-time launch secret; "" once redeemed
	sessions map[string]*session // by cookie value
	users    map[string]*user    // signed-in wallets, by address
	hosts    map[string]bool     // accepted Host headers
	cookie   string              // the session cookie's name, per port
	ctx      context.Context     // ends the users' watchers
	cancel   context.CancelFunc
}

// New returns a server with a fresh launch secret.
func New(opts *Options) (*Server, error) {
	if opts == nil || opts.Relay == "" || opts.Home == "" {
		return nil, errors.New("web: Relay and Home are required")
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
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	secret, err := randomToken(o.Rand)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{opts: o, tmpl: tmpl, static: http.StripPrefix("/static/", http.FileServerFS(sub)),
		launch: secret, cookie: cookiePrefix, sessions: map[string]*session{}, users: map[string]*user{}, hosts: map[string]bool{},
		ctx: ctx, cancel: cancel}, nil
}

// CheckLoopback refuses a listen address that is not a loopback IP
// address (a host name is refused too: it could resolve elsewhere).
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not a loopback IP address (127.0.0.1 or [::1]): chatmcp web holds your device keys and serves only this machine", addr)
	}
	return nil
}

// LaunchURL is the URL that redeems the launch secret on ln's address.
func (s *Server) LaunchURL(ln net.Listener) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + ln.Addr().String() + "/launch?secret=" + s.launch
}

// Serve serves ln (a loopback listener) until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := CheckLoopback(ln.Addr().String()); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s.mu.Lock()
	// DNS rebinding: a page on evil.example that resolves to 127.0.0.1
	// reaches this port with Host evil.example; only our own names pass.
	s.hosts[ln.Addr().String()] = true
	s.hosts["localhost:"+port] = true
	s.hosts["127.0.0.1:"+port] = true
	s.hosts["[::1]:"+port] = true
	// Cookies do not keep ports apart: two servers on one machine (alice
	// and bob under chatmcp dev) need two names.
	s.cookie = cookiePrefix + port
	s.mu.Unlock()
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		s.cancel()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the users' relay watchers.
func (s *Server) Close() { s.cancel() }

// ServeHTTP checks the Host header, sets the security headers and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	hostOK := s.hosts[r.Host]
	s.mu.Unlock()
	if !hostOK {
		http.Error(w, "chatmcp web: unexpected Host header (only this machine's loopback address is served)", http.StatusMisdirectedRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if strings.HasPrefix(r.URL.Path, "/static/") {
		s.static.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/launch" {
		s.handleLaunch(w, r)
		return
	}
	sess := s.session(r)
	if sess == nil {
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, r, nil, "nolink", nil)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !sess.checkCSRF(r) {
			http.Error(w, "chatmcp web: missing or wrong CSRF token", http.StatusForbidden)
			return
		}
	}
	s.route(w, r, sess)
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, sess *session) {
	p, m := r.URL.Path, r.Method
	switch {
	case p == "/signin" && m == http.MethodGet:
		s.render(w, r, sess, "signin", nil)
	case p == "/signin/keypair" && m == http.MethodPost:
		s.handleKeypairSignIn(w, r, sess)
	case p == "/signin/wallet/start" && m == http.MethodPost:
		s.handleWalletStart(w, r, sess)
	case p == "/signin/wallet/cert" && m == http.MethodPost:
		s.handleWalletCert(w, r, sess)
	case p == "/signin/wallet/finish" && m == http.MethodPost:
		s.handleWalletFinish(w, r, sess)
	case p == "/signout" && m == http.MethodPost:
		sess.signOut()
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
	case p == "/attest":
		s.handleAttest(w, r, sess)
	case p == "/admin" || strings.HasPrefix(p, "/admin/"):
		s.handleAdmin(w, r, sess)
	default:
		u := sess.current()
		if u == nil {
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		s.routeChat(w, r, sess, u)
	}
}

// page is what every template gets.
type page struct {
	CSRF  string
	User  string
	Admin bool
	Title string
	Flash string
	Error string
	Data  any
	// After is the newest message seq the page reflects: its live updates
	// start after it.
	After int64
}

func parseTemplates() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{
		"short": shortAddr,
		"join":  func(l []string) string { return strings.Join(l, ", ") },
		"time":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", n, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes template name inside the layout.
func (s *Server) render(w http.ResponseWriter, r *http.Request, sess *session, name string, data any) {
	s.renderPage(w, sess, name, &page{Data: data})
}

func (s *Server) renderPage(w http.ResponseWriter, sess *session, name string, p *page) {
	if sess != nil {
		p.CSRF = sess.csrf
		if u := sess.current(); u != nil {
			p.User = u.addr.String()
		}
	}
	p.Admin = s.opts.Admin != nil
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.tmpl[name].ExecuteTemplate(w, "layout.html", p); err != nil {
		s.opts.Log.Error("rendering", "template", name, "err", err)
	}
}

func shortAddr(a any) string {
	s := fmt.Sprint(a)
	if len(s) <= 12 {
		return s
	}
	return s[:6] + "…" + s[len(s)-4:]
}
