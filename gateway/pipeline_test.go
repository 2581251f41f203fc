package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/gateway/approval"
	"github.com/chatmcp/chatmcp/gateway/authz"
	"github.com/chatmcp/chatmcp/gateway/credential"
	"github.com/chatmcp/chatmcp/gateway/redact"
)

// Unit tests of the call path's steps (pipeline.go), each on a Server with
// only what the step reads. The steps together, through a real MCP client
// and upstream, are tested in package gateway_test.

const stepSecret = "layer1-secret-0123456789"

// recAudit records entries; err, when set, fails every append.
type recAudit struct {
	mu      sync.Mutex
	entries []audit.Entry
	err     error
}

func (a *recAudit) Append(_ context.Context, e audit.Entry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	a.entries = append(a.entries, e)
	return nil
}

func (a *recAudit) all() []audit.Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Entry(nil), a.entries...)
}

func stepServer(t *testing.T) (*Server, *recAudit) {
	t.Helper()
	rec := &recAudit{}
	s := &Server{
		cfg:       &Config{},
		now:       time.Now,
		log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		tools:     map[string]*tool{},
		upstreams: map[string]*backend{},
		redactor:  redact.New([]byte(stepSecret)),
		creds:     credential.NewStore(time.Now),
		approvals: approval.New(&approval.Options{Timeout: 10 * time.Second}),
		audit:     rec,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() { s.cancel(); s.wg.Wait() })
	return s, rec
}

// stepTool adds tool up_<name> of upstream "up" to s.
func stepTool(s *Server, name string, readOnly, enabled bool) *tool {
	u := &backend{cfg: &Upstream{Name: "up"}}
	t := &tool{exposed: "up_" + name, upstream: u, def: &mcp.Tool{Name: name}, readOnly: readOnly, enabled: enabled}
	s.tools[t.exposed] = t
	return t
}

// stepPrincipal is a principal with a token for tools, narrowed by args.
func stepPrincipal(t *testing.T, subject string, tools []string, args ...captoken.ArgConstraint) *authz.Principal {
	t.Helper()
	key, err := captoken.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := captoken.NewID()
	tok, err := captoken.Mint(key, captoken.Claims{ID: id, Audience: "a", Subject: subject, Tools: tools, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(args) > 0 {
		if tok, err = captoken.Attenuate(tok, captoken.Caveat{Args: args}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := captoken.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	return authz.NewPrincipal(v)
}

func stepRequest(p *authz.Principal, name, args string) *mcp.CallToolRequest {
	req := &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: name, Arguments: json.RawMessage(args)}}
	if p != nil {
		req.Extra = &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{Extra: map[string]any{"principal": p}}}
	}
	return req
}

func stepCall(t *testing.T, s *Server, p *authz.Principal, name, args string) *toolCall {
	t.Helper()
	c, err := s.authenticate(stepRequest(p, name, args))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestAuthenticate(t *testing.T) {
	s, _ := stepServer(t)
	p := stepPrincipal(t, "alice", []string{"*"})
	c, err := s.authenticate(stepRequest(p, "up_x", `{}`))
	if err != nil || c.principal != p || c.start.IsZero() {
		t.Fatalf("authenticate = %+v, %v", c, err)
	}
	var je *jsonrpc.Error
	if _, err := s.authenticate(stepRequest(nil, "up_x", `{}`)); !errors.As(err, &je) || je.Code != jsonrpc.CodeInvalidParams || !strings.Contains(je.Message, "unauthenticated") {
		t.Fatalf("no principal: %v", err)
	}
}

func TestResolve(t *testing.T) {
	s, _ := stepServer(t)
	stepTool(s, "write", false, true)
	stepTool(s, "changed", false, false)
	stepTool(s, "secret", false, true)
	p := stepPrincipal(t, "alice", []string{"up_write", "up_changed"})
	unavailableText := errText(unavailable("up_nope"))
	for _, tc := range []struct {
		name, tool, args string
		reason, err      string // "" when resolved
		hasTool          bool
	}{
		{"resolved", "up_write", `{"b":1,"a":"x"}`, "", "", true},
		{"no arguments", "up_write", ``, "", "", true},
		{"duplicate key", "up_write", `{"a":1,"a":2}`, reasonMalformedArgs, `duplicate key at "/a"`, false},
		{"not an object", "up_write", `[1]`, reasonMalformedArgs, "must be a JSON object", false},
		{"unknown tool", "up_nope", `{}`, reasonUnknownTool, unavailableText, false},
		// Same answer as an unknown tool; the audit reason and upstream differ.
		{"not permitted", "up_secret", `{}`, reasonNotPermitted, strings.ReplaceAll(unavailableText, "up_nope", "up_secret"), true},
		{"disabled by a pin change", "up_changed", `{}`, reasonDisabled, "definition changed and awaits approval", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := stepCall(t, s, p, tc.tool, tc.args)
			r := s.resolve(c)
			if c.argsHash == "" {
				t.Error("no arguments hash for the audit entry")
			}
			if (c.tool != nil) != tc.hasTool {
				t.Errorf("tool %v, want set=%v", c.tool, tc.hasTool)
			}
			if tc.reason == "" {
				if r != nil {
					t.Fatalf("refused: %+v", r)
				}
				if c.args == nil {
					t.Fatal("arguments not decoded")
				}
				return
			}
			if r == nil || r.reason != tc.reason || !strings.Contains(errText(r.err), tc.err) {
				t.Fatalf("refusal %+v, want reason %q and error containing %q", r, tc.reason, tc.err)
			}
			if !rateLimitedReason(r.reason) {
				t.Errorf("reason %q escapes the refusal rate limit", r.reason)
			}
		})
	}
	t.Run("audit_arguments records them redacted", func(t *testing.T) {
		s.cfg.AuditArguments = true
		defer func() { s.cfg.AuditArguments = false }()
		c := stepCall(t, s, p, "up_write", `{"k":"`+stepSecret+`"}`)
		if r := s.resolve(c); r != nil {
			t.Fatal(r.reason)
		}
		if strings.Contains(string(c.auditArgs), stepSecret) || !json.Valid(c.auditArgs) {
			t.Fatalf("audit arguments %s", c.auditArgs)
		}
	})
}

func writePolicy(t *testing.T, text string) *authz.Policy {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.cedar")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	pol, err := authz.LoadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func TestAuthorize(t *testing.T) {
	s, _ := stepServer(t)
	stepTool(s, "write", false, true)
	narrow := stepPrincipal(t, "alice", []string{"up_*"}, captoken.ArgConstraint{Tool: "up_write", Arg: "path", Values: []string{"/tmp/*"}})
	s.policy = writePolicy(t, `permit (principal, action == Action::"call", resource);
forbid (principal, action == Action::"call", resource) when { context.arguments.path like "/tmp/etc*" };`)
	for _, tc := range []struct {
		name, args, reason string
	}{
		{"allowed", `{"path":"/tmp/a"}`, ""},
		{"outside the token's constraint", `{"path":"/etc/passwd"}`, reasonArgsNotPermitted},
		{"forbidden by policy", `{"path":"/tmp/etcetera"}`, "*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := stepCall(t, s, narrow, "up_write", tc.args)
			if r := s.resolve(c); r != nil {
				t.Fatal(r.reason)
			}
			r := s.authorize(c)
			switch {
			case tc.reason == "" && r != nil:
				t.Fatalf("refused: %+v", r)
			case tc.reason == "":
				if c.policyCall == nil || c.policyCall.Upstream != "up" || c.policyCall.Principal != "alice" {
					t.Fatalf("policy call %+v", c.policyCall)
				}
			case r == nil:
				t.Fatal("allowed")
			case tc.reason != "*" && r.reason != tc.reason:
				t.Fatalf("reason %q, want %q", r.reason, tc.reason)
			case tc.reason == "*" && !strings.Contains(errText(r.err), "refused by policy"):
				t.Fatalf("policy refusal %v", r.err)
			}
			if r != nil && rateLimitedReason(r.reason) {
				t.Errorf("authorization refusal %q is rate-limited", r.reason)
			}
		})
	}
}

// confirmAsync runs confirm in the background and returns the held
// request and a channel with confirm's answer.
func confirmAsync(t *testing.T, s *Server, c *toolCall) (approval.Request, <-chan *refused) {
	t.Helper()
	done := make(chan *refused, 1)
	go func() { done <- s.confirm(context.Background(), c) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if l := s.approvals.List(); len(l) == 1 {
			return l[0], done
		}
		if time.Now().After(deadline) {
			t.Fatal("the call was not held")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConfirm(t *testing.T) {
	s, _ := stepServer(t)
	stepTool(s, "read", true, true)
	stepTool(s, "write", false, true)
	stepTool(s, "skip", false, true)
	p := stepPrincipal(t, "alice", []string{"*"})
	prepared := func(name, args string) *toolCall {
		c := stepCall(t, s, p, name, args)
		if r := s.resolve(c); r != nil {
			t.Fatal(r.reason)
		}
		if r := s.authorize(c); r != nil {
			t.Fatal(r.reason)
		}
		return c
	}
	t.Run("read-only is not held", func(t *testing.T) {
		c := prepared("up_read", `{}`)
		if r := s.confirm(context.Background(), c); r != nil || c.approval != "not required (read-only)" || c.approvalID != "" {
			t.Fatalf("%+v %q", r, c.approval)
		}
	})
	t.Run("exempted by policy", func(t *testing.T) {
		s.policy = writePolicy(t, `permit (principal, action == Action::"call", resource);
permit (principal, action == Action::"skip_confirmation", resource == Tool::"up_skip");`)
		defer func() { s.policy = nil }()
		c := prepared("up_skip", `{}`)
		if r := s.confirm(context.Background(), c); r != nil || c.approval != "exempted by policy" {
			t.Fatalf("%+v %q", r, c.approval)
		}
	})
	for _, tc := range []struct {
		decide approval.Outcome
		note   string
	}{{approval.Approved, "approved by admin"}, {approval.Denied, "denied by admin"}} {
		t.Run(string(tc.decide), func(t *testing.T) {
			c := prepared("up_write", `{"k":"`+stepSecret+`"}`)
			held, done := confirmAsync(t, s, c)
			// The approver sees who asks, what, and the arguments redacted.
			if held.Principal != "alice" || held.Tool != "up_write" || held.ArgumentsSHA256 != c.argsHash {
				t.Fatalf("held %+v", held)
			}
			if b, _ := json.Marshal(held.Arguments); strings.Contains(string(b), stepSecret) || !strings.Contains(string(b), "k") {
				t.Fatalf("approver sees arguments %s", b)
			}
			if err := s.approvals.Decide(held.ID, tc.decide, "admin"); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if c.approval != tc.note || c.approvalID != held.ID {
				t.Fatalf("approval %q id %q", c.approval, c.approvalID)
			}
			if tc.decide == approval.Approved && r != nil {
				t.Fatalf("approved call refused: %+v", r)
			}
			if tc.decide == approval.Denied && (r == nil || r.err != nil || !r.result.IsError || r.reason != "approval denied by admin") {
				t.Fatalf("denied call: %+v", r)
			}
		})
	}
}

func TestAuditSteps(t *testing.T) {
	s, rec := stepServer(t)
	stepTool(s, "write", false, true)
	p := stepPrincipal(t, "alice", []string{"*"})
	c := stepCall(t, s, p, "up_write", `{"a":1}`)
	if r := s.resolve(c); r != nil {
		t.Fatal(r.reason)
	}
	c.approval, c.approvalID = "approved by admin", "id1"

	if _, err := s.auditDecision(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	s.auditOutcome(context.Background(), c, &mcp.CallToolResult{IsError: true}, nil)
	s.auditOutcome(context.Background(), c, nil, errors.New("boom"))
	s.auditOutcome(context.Background(), c, &mcp.CallToolResult{}, nil)
	s.wg.Wait()
	got := rec.all()
	if len(got) != 4 {
		t.Fatalf("%d entries", len(got))
	}
	d := got[0]
	if d.Type != auditCall || d.Decision != "granted" || d.Reason != "approval approved by admin" || d.Request != "id1" ||
		d.Upstream != "up" || d.TokenChain != p.ChainID || d.Actor != "token:"+p.TokenID || d.Principal != "alice" || d.ArgsSHA256 != c.argsHash {
		t.Fatalf("decision entry %+v", d)
	}
	outcomes := map[string]bool{}
	for _, e := range got[1:] {
		if e.Type != auditCallResult || e.Request != "id1" {
			t.Fatalf("result entry %+v", e)
		}
		outcomes[e.Decision+"/"+e.Reason] = true
	}
	for _, want := range []string{"error/tool error", "error/upstream error", "ok/"} {
		if !outcomes[want] {
			t.Errorf("no result entry %q in %v", want, outcomes)
		}
	}

	t.Run("a refusal of a client-chosen name is clipped", func(t *testing.T) {
		long := strings.Repeat("x", 2*maxAuditName)
		c := stepCall(t, s, p, long, `{}`)
		r := s.resolve(c)
		before := len(rec.all())
		s.auditRefused(context.Background(), c, r.reason)
		e := rec.all()[before]
		if e.Decision != "denied" || e.Reason != reasonUnknownTool || len(e.Tool) > maxAuditName+len("…") || e.Upstream != "" {
			t.Fatalf("refusal entry %+v", e)
		}
	})
	t.Run("no decision entry, no call", func(t *testing.T) {
		rec.mu.Lock()
		rec.err = errors.New("disk full")
		rec.mu.Unlock()
		var je *jsonrpc.Error
		if _, err := s.auditDecision(context.Background(), c); !errors.As(err, &je) || je.Code != jsonrpc.CodeInternalError {
			t.Fatalf("auditDecision with a failing log: %v", err)
		}
	})
}

func TestRedactStep(t *testing.T) {
	s, _ := stepServer(t)
	p := stepPrincipal(t, "alice", []string{"*"})
	c := stepCall(t, s, p, "up_x", `{}`)
	const layer2 = "layer2-credential-abcdef"
	s.creds.Put(p.ChainID, "", map[string][]byte{"tok": []byte(layer2)}, time.Now().Add(time.Hour))

	res, err := s.redact(c, &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: stepSecret + " " + layer2}},
		StructuredContent: map[string]any{"k": stepSecret}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	if strings.Contains(string(b), stepSecret) || strings.Contains(string(b), layer2) {
		t.Fatalf("redacted result %s", b)
	}
	clean := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "nothing secret"}}}
	if res, _ := s.redact(c, clean, nil); res != clean {
		t.Fatal("a clean result was copied")
	}
	if _, err := s.redact(c, nil, errors.New("failed with "+layer2)); err == nil || strings.Contains(err.Error(), layer2) {
		t.Fatalf("redacted error %v", err)
	}
}

// TestForward: the upstream gets the canonical encoding of the authorized
// arguments under its own tool name, and a tool disabled after the
// decision (a pin change on reconnection) is not called.
func TestForward(t *testing.T) {
	up := mcp.NewServer(&mcp.Implementation{Name: "up"}, nil)
	var mu sync.Mutex
	var got []string
	up.AddTool(&mcp.Tool{Name: "write", InputSchema: map[string]any{"type": "object"}}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		mu.Lock()
		got = append(got, string(req.Params.Arguments))
		mu.Unlock()
		return &mcp.CallToolResult{}, nil
	})
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	defer ts.Close()

	s, _ := stepServer(t)
	u := s.newBackend(&Upstream{Name: "up", URL: ts.URL})
	defer u.close()
	if _, err := u.pool.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	tl := &tool{exposed: "up_write", upstream: u, def: &mcp.Tool{Name: "write"}, enabled: true}
	s.tools[tl.exposed] = tl
	p := stepPrincipal(t, "alice", []string{"*"})
	c := stepCall(t, s, p, "up_write", `{ "b": 2, "a": "\u0078" }`)
	if r := s.resolve(c); r != nil {
		t.Fatal(r.reason)
	}
	if _, err := s.forward(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != 1 || got[0] != `{"a":"x","b":2}` {
		t.Fatalf("upstream got %q", got)
	}
	mu.Unlock()

	s.mu.Lock()
	tl.enabled = false
	s.mu.Unlock()
	if _, err := s.forward(context.Background(), c); err == nil || !strings.Contains(err.Error(), "definition changed") {
		t.Fatalf("forwarded a disabled tool: %v", err)
	}
}
