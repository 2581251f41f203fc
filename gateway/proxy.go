package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/gateway/approval"
	"github.com/chatmcp/chatmcp/gateway/authz"
	"github.com/chatmcp/chatmcp/gateway/catalog"
	"github.com/chatmcp/chatmcp/gateway/upstream"
)

// tool is one upstream tool as the gateway knows it.
type tool struct {
	exposed  string
	upstream *backend
	def      *mcp.Tool // as the upstream sent it
	readOnly bool
	enabled  bool // pinned definition; false while a change awaits approval
}

// conn is one MCP client session to an upstream, shared by every client
// session or owned by one (per-session upstreams, for layer-2 credentials).
type conn struct {
	cs *mcp.ClientSession

	mu       sync.Mutex
	inflight map[uint64]*call // calls forwarded and not yet answered
}

// call is a forwarded call, for routing what the upstream sends back
// during it (progress, elicitation, sampling, logs).
type call struct {
	ss *mcp.ServerSession
	// ctx is the client request's context: messages sent with it travel on
	// that request's response stream, which the client is reading.
	ctx           context.Context
	progressToken any // the client's token, nil if it asked for none
}

// backend is one configured upstream server.
type backend struct {
	cfg    *Upstream
	perSes bool // needs layer-2 credentials: one connection per session

	mu     sync.Mutex
	shared *conn
	bySes  map[string]*conn
	dialMu sync.Mutex // serializes reconnection of the shared connection
	ids    atomic.Uint64
	pass   *passthrough // guarded by Server.mu
}

func (u *backend) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.shared != nil {
		u.shared.cs.Close()
		u.shared = nil
	}
	for k, c := range u.bySes {
		c.cs.Close()
		delete(u.bySes, k)
	}
}

// spec resolves the upstream's configured values.
func (s *Server) spec(u *Upstream, creds map[string][]byte, blankCreds bool) (*upstream.Spec, error) {
	sp := &upstream.Spec{Name: u.Name, Command: u.Command, Args: u.Args, URL: u.URL,
		Env: map[string]string{}, Headers: map[string]string{}}
	resolve := func(v Value) (string, bool, error) {
		if v.Credential != "" && blankCreds {
			return "", false, nil
		}
		r, err := v.Resolve(s.secrets, creds)
		return r, true, err
	}
	for k, v := range u.Env {
		r, ok, err := resolve(v)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", k, err)
		}
		if ok {
			sp.Env[k] = r
		}
	}
	for k, v := range u.Headers {
		r, ok, err := resolve(v)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", k, err)
		}
		if ok {
			sp.Headers[k] = r
		}
	}
	return sp, nil
}

// dial connects a new conn to u, with handlers routing the upstream's
// notifications and requests back to the right client sessions.
func (s *Server) dial(ctx context.Context, u *backend, sp *upstream.Spec) (*conn, error) {
	c := &conn{inflight: map[uint64]*call{}}
	copts := &mcp.ClientOptions{
		Logger: s.log,
		ToolListChangedHandler: func(ctx context.Context, _ *mcp.ToolListChangedRequest) {
			if c == u.sharedConn() {
				go s.syncTools(s.ctx, u, c)
			}
		},
		ResourceListChangedHandler: func(ctx context.Context, _ *mcp.ResourceListChangedRequest) {
			if c == u.sharedConn() {
				go s.syncResources(s.ctx, u, c)
			}
		},
		PromptListChangedHandler: func(ctx context.Context, _ *mcp.PromptListChangedRequest) {
			if c == u.sharedConn() {
				go s.syncPrompts(s.ctx, u, c)
			}
		},
		ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
			s.forwardProgress(ctx, c, req.Params)
		},
		LoggingMessageHandler: func(ctx context.Context, req *mcp.LoggingMessageRequest) {
			s.forwardLog(ctx, u, c, req.Params)
		},
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			cl, err := c.soleCaller()
			if err != nil {
				return nil, err
			}
			ss := cl.ss
			if ss.InitializeParams() == nil || ss.InitializeParams().Capabilities == nil || ss.InitializeParams().Capabilities.Elicitation == nil {
				return nil, errors.New("the client did not declare elicitation")
			}
			var p mcp.ElicitParams
			if err := s.redactCopy(req.Params, &p); err != nil {
				return nil, err
			}
			return ss.Elicit(withDeadlineOf(cl.ctx, ctx), &p)
		},
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			cl, err := c.soleCaller()
			if err != nil {
				return nil, err
			}
			ss := cl.ss
			if ss.InitializeParams() == nil || ss.InitializeParams().Capabilities == nil || ss.InitializeParams().Capabilities.Sampling == nil {
				return nil, errors.New("the client did not declare sampling")
			}
			var p mcp.CreateMessageParams
			if err := s.redactCopy(req.Params, &p); err != nil {
				return nil, err
			}
			return ss.CreateMessage(withDeadlineOf(cl.ctx, ctx), &p)
		},
	}
	cs, err := upstream.Dial(ctx, sp, &upstream.Options{Client: copts, HTTPClient: s.opts.UpstreamHTTPClient, Getenv: s.opts.Getenv})
	if err != nil {
		return nil, err
	}
	c.cs = cs
	// Ask for every log level: each client session's own level filters
	// what it receives (ServerSession.Log).
	if caps := cs.InitializeResult().Capabilities; caps != nil && caps.Logging != nil {
		if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
			s.log.Warn("upstream refused logging/setLevel", "upstream", u.cfg.Name, "err", err)
		}
	}
	return c, nil
}

func (u *backend) sharedConn() *conn {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.shared
}

// soleCaller returns the client session of the only call in flight on c. A
// request from the upstream during two concurrent calls cannot be
// attributed, and is refused rather than sent to the wrong person.
func (c *conn) soleCaller() (*call, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var one *call
	for _, cl := range c.inflight {
		if one != nil && cl.ss != one.ss {
			return nil, errors.New("chatmcp-gateway: cannot attribute this request to one client session")
		}
		one = cl
	}
	if one == nil || one.ss == nil {
		return nil, errors.New("chatmcp-gateway: no call in progress")
	}
	return one, nil
}

// startUpstream connects to u (a discovery connection with blank
// credentials for per-session upstreams) and registers its features.
func (s *Server) startUpstream(ctx context.Context, cfg *Upstream) error {
	u := &backend{cfg: cfg, perSes: len(cfg.Credentials()) > 0, bySes: map[string]*conn{}}
	sp, err := s.spec(cfg, nil, true)
	if err != nil {
		return fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	c, err := s.dial(ctx, u, sp)
	if err != nil {
		return err
	}
	// The upstream may already be sending list-changed notifications,
	// whose handlers read u.shared under u.mu.
	u.mu.Lock()
	u.shared = c
	u.mu.Unlock()
	s.watch(u, c, "")
	s.mu.Lock()
	s.upstreams[cfg.Name] = u
	s.mu.Unlock()
	if err := s.syncTools(ctx, u, c); err != nil {
		return fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	s.syncResources(ctx, u, c)
	s.syncPrompts(ctx, u, c)
	return nil
}

// syncTools lists u's tools, checks each against its pin and updates what
// the gateway exposes: new and unchanged definitions are exposed, changed
// ones are withdrawn until approved, vanished ones are removed.
func (s *Server) syncTools(ctx context.Context, u *backend, c *conn) error {
	list, err := upstream.ListTools(ctx, c.cs)
	if err != nil {
		s.log.Error("listing upstream tools", "upstream", u.cfg.Name, "err", err)
		return fmt.Errorf("listing tools: %w", err)
	}
	byName := map[string]*mcp.Tool{}
	names := make([]string, 0, len(list))
	for _, t := range list {
		if t == nil {
			continue
		}
		if _, dup := byName[t.Name]; dup {
			continue
		}
		byName[t.Name] = t
		names = append(names, t.Name)
	}
	exposed, dropped := catalog.Resolve(u.cfg.Name, names)
	for _, d := range dropped {
		s.log.Warn("upstream tool dropped: its exposed name collides", "upstream", u.cfg.Name, "tool", d)
	}
	next := map[string]*tool{}
	for orig, name := range exposed {
		def := byName[orig]
		st, err := s.pins.Check(name, def)
		if err != nil {
			s.log.Error("pinning tool", "tool", name, "err", err)
			st = catalog.Changed
		}
		ro := def.Annotations != nil && def.Annotations.ReadOnlyHint
		next[name] = &tool{exposed: name, upstream: u, def: def, readOnly: ro, enabled: st == catalog.Pinned}
		if st == catalog.Changed {
			s.log.Warn("tool definition changed: disabled until approved", "tool", name)
		}
	}
	s.mu.Lock()
	var remove []string
	for name, t := range s.tools {
		if t.upstream != u {
			continue
		}
		if n, ok := next[name]; !ok || !n.enabled {
			remove = append(remove, name)
			delete(s.tools, name)
		}
	}
	var add []*tool
	for name, t := range next {
		old := s.tools[name]
		s.tools[name] = t
		if t.enabled && (old == nil || !old.enabled || old.def != t.def) {
			add = append(add, t)
		}
	}
	s.mu.Unlock()
	if len(remove) > 0 {
		s.mcp.RemoveTools(remove...)
	}
	sort.Slice(add, func(i, j int) bool { return add[i].exposed < add[j].exposed })
	for _, t := range add {
		s.addTool(t)
	}
	return nil
}

// addTool registers t with the MCP server. The SDK panics on schemas it
// rejects; such a tool is withdrawn and logged instead.
func (s *Server) addTool(t *tool) {
	def := *t.def
	def.Name = t.exposed
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("upstream tool rejected", "tool", t.exposed, "err", fmt.Sprint(r))
			s.mu.Lock()
			t.enabled = false
			s.mu.Unlock()
		}
	}()
	s.mcp.AddTool(&def, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return s.callTool(ctx, req)
	})
}

// ApproveTool pins the pending definition of name, which must have the
// hex SHA-256 sha256 (catalog.Pins.Approve), and re-exposes it.
func (s *Server) ApproveTool(ctx context.Context, name, sha256 string) error {
	if err := s.pins.Approve(name, sha256); err != nil {
		return err
	}
	s.mu.RLock()
	t := s.tools[name]
	s.mu.RUnlock()
	if t == nil {
		return nil // the upstream no longer offers it; the pin waits for it
	}
	c := t.upstream.sharedConn()
	if c == nil {
		return nil
	}
	return s.syncTools(ctx, t.upstream, c)
}

// refusal is a JSON-RPC error for calls the gateway refuses before any
// person is asked: the same code as an unknown tool.
func refusal(format string, args ...any) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "chatmcp-gateway: " + fmt.Sprintf(format, args...)}
}

func failed(format string, args ...any) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "chatmcp-gateway: " + fmt.Sprintf(format, args...)}}}
}

// callTool is every tools/call: authorize, gate, audit, forward, redact.
func (s *Server) callTool(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	start := s.now()
	name := req.Params.Name
	p := principalOf(req.Extra)
	if p == nil {
		return nil, refusal("unauthenticated")
	}
	entry := audit.Entry{Type: "gateway.call", Actor: "token:" + p.TokenID, TokenChain: p.ChainID, Principal: p.Name(), Tool: name, Action: "tools/call"}
	args, argsHash, err := decodeArgs(req.Params.Arguments)
	entry.ArgsSHA256 = argsHash
	if err == nil && s.cfg.AuditArguments {
		entry.Arguments = s.auditArguments(req, args)
	}
	// Every append below outlives the caller's context (appendAudit);
	// refusals before authorization are rate-limited (refusal.go).
	deny := func(reason string, err error) (*mcp.CallToolResult, error) {
		entry.Decision, entry.Reason = "denied", reason
		entry.DurationMS = ms(s.now().Sub(start))
		if rateLimitedReason(reason) {
			entry.Tool = clip(entry.Tool)
			s.auditRefusal(ctx, entry)
		} else if aerr := s.appendAudit(ctx, entry); aerr != nil {
			s.log.Error("audit append failed", "err", aerr)
		}
		return nil, err
	}
	if err != nil {
		return deny("malformed arguments", refusal("%v", err))
	}
	s.mu.RLock()
	t := s.tools[name]
	s.mu.RUnlock()
	// The middleware refused these already (refuseCallName); a pin change
	// may have raced it. An unknown tool and one the token does not allow
	// get the same answer; only the audit entry tells them apart.
	switch {
	case t == nil:
		return deny(reasonUnknownTool, unavailable(name))
	case !p.Allows(name):
		entry.Upstream = t.upstream.cfg.Name
		return deny(reasonNotPermitted, unavailable(name))
	case !t.enabled:
		entry.Upstream = t.upstream.cfg.Name
		return deny(reasonDisabled, refusal("tool %q is disabled: its definition changed and awaits approval", name))
	}
	entry.Upstream = t.upstream.cfg.Name
	if !p.AllowsCall(name, args) {
		return deny("arguments not permitted by token", refusal("the arguments of this call to %q are not permitted by your token's constraints", name))
	}
	cc := &authz.Call{Principal: p.Name(), Tool: name, Upstream: t.upstream.cfg.Name, ReadOnly: t.readOnly, Arguments: args}
	if ok, why := s.policy.Allow(authz.ActionCall, cc); !ok {
		return deny(why, refusal("call to %q refused by policy", name))
	}

	approvalNote := "not required (read-only)"
	if !t.readOnly {
		exempt, _ := s.policy.Allow(authz.ActionSkipConfirmation, cc)
		if exempt {
			approvalNote = "exempted by policy"
		} else {
			d := s.confirm(ctx, req, p, t, args, argsHash)
			approvalNote = string(d.Outcome)
			if d.By != "" {
				approvalNote += " by " + d.By
			}
			entry.Request = d.id
			if d.Outcome != approval.Approved {
				entry.Decision, entry.Reason = "denied", "approval "+approvalNote
				entry.DurationMS = ms(s.now().Sub(start))
				// A caller that went away (approval cancelled) has a
				// cancelled ctx; its entry is written all the same.
				if aerr := s.appendAudit(ctx, entry); aerr != nil {
					s.log.Error("audit append failed", "err", aerr)
				}
				return failed("call to %s was not approved (%s); the upstream did not receive it", name, approvalNote), nil
			}
		}
	}

	entry.Decision, entry.Reason = "granted", "approval "+approvalNote
	entry.DurationMS = ms(s.now().Sub(start))
	if err := s.appendAudit(ctx, entry); err != nil {
		s.log.Error("audit append failed: refusing call", "err", err)
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "chatmcp-gateway: audit log unavailable; call refused"}
	}

	res, callErr := s.forward(ctx, req, t, p, args)

	// The outcome is recorded off the response path: the decision entry
	// above already made the call auditable before the upstream saw it, and
	// a failed write here breaks the log (audit.ErrBroken), which refuses
	// every later call at its decision entry.
	done := entry
	done.Type = "gateway.call.result"
	done.DurationMS = ms(s.now().Sub(start))
	switch {
	case callErr != nil:
		done.Decision, done.Reason = "error", "upstream error"
	case res.IsError:
		done.Decision, done.Reason = "error", "tool error"
	default:
		done.Decision, done.Reason = "ok", ""
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.appendAudit(ctx, done); err != nil {
			s.log.Error("audit append of a call result failed", "err", err)
		}
	}()
	if callErr != nil {
		return failed("upstream %s: %s", t.upstream.cfg.Name, s.redactFor(req).String(callErr.Error())), nil
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// auditArguments returns args for an audit entry, redacted of layer-1
// secrets and the session's layer-2 credentials (audit_arguments: true).
func (s *Server) auditArguments(req *mcp.CallToolRequest, args map[string]any) json.RawMessage {
	canon, err := json.Marshal(args)
	if err != nil {
		return nil
	}
	red := s.redactFor(req).String(string(canon))
	if !json.Valid([]byte(red)) {
		// Redaction cut through JSON syntax: keep it as one string.
		b, _ := json.Marshal(red)
		return b
	}
	return json.RawMessage(red)
}

// decision is an approval outcome with the approval id.
type decision struct {
	approval.Decision
	id string
}

// confirm holds the call until a person decides through an authenticated
// channel other than the caller's own session: the admin approvals API
// (chatmcp approvals). When the client declared elicitation, the gateway
// also tells it by an elicitation form that the call waits, with the
// approval id and the command that approves it; the caller's answer approves
// nothing (approval.ErrSelfApproval) unless the tool's upstream opted in
// with caller_elicitation_approves. The first decision wins.
func (s *Server) confirm(ctx context.Context, req *mcp.CallToolRequest, p *authz.Principal, t *tool, args map[string]any, argsHash string) decision {
	name := t.exposed
	callerApproves := t.upstream.cfg.CallerElicitationApproves
	redacted, _ := s.redactor.Value(args).(map[string]any)
	held, wait := s.approvals.Hold(approval.Request{Principal: p.Name(), TokenID: p.TokenID, Tool: name, ArgumentsSHA256: argsHash,
		Arguments: redacted, Session: sessionID(req.Session), CallerMayApprove: callerApproves})
	s.log.Info("call held for approval", "id", held.ID, "tool", name, "principal", p.Name())
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	if ss := req.Session; ss != nil && ss.ID() != "" && ss.InitializeParams() != nil && ss.InitializeParams().Capabilities != nil && ss.InitializeParams().Capabilities.Elicitation != nil {
		go func() {
			argText, _ := json.Marshal(redacted)
			params := &mcp.ElicitParams{
				Mode: "form",
				Message: fmt.Sprintf("%s's call to %s with arguments %s waits for approval %s. A person approves it out of band: `chatmcp approvals approve %s` (or deny). This call is not approved from here.",
					p.Name(), name, argText, held.ID, held.ID),
				// Nothing to fill in: the form only informs.
				RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{}},
			}
			if callerApproves {
				params.Message = fmt.Sprintf("Allow %s to call %s with arguments %s? (approval %s; also decidable with `chatmcp approvals approve %s`)",
					p.Name(), name, argText, held.ID, held.ID)
				params.RequestedSchema = map[string]any{
					"type": "object",
					"properties": map[string]any{
						"approve": map[string]any{"type": "boolean", "title": "Approve this call"},
					},
					"required": []any{"approve"},
				}
			}
			res, err := ss.Elicit(ectx, params)
			if err != nil || ectx.Err() != nil || !callerApproves {
				return // the out-of-band path decides
			}
			out := approval.Denied
			if res.Action == "accept" && res.Content["approve"] == true {
				out = approval.Approved
			}
			if err := s.approvals.DecideInSession(held.ID, out, "caller elicitation", ss.ID()); err != nil && !errors.Is(err, approval.ErrUnknown) {
				s.log.Warn("elicitation decision refused", "id", held.ID, "err", err)
			}
		}()
	}
	return decision{Decision: wait(ctx), id: held.ID}
}

// forward sends the call to the upstream and redacts the result. The
// arguments sent are the canonical encoding of args, the value that was
// authorized, never the client's bytes (args.go).
func (s *Server) forward(ctx context.Context, req *mcp.CallToolRequest, t *tool, p *authz.Principal, args map[string]any) (*mcp.CallToolResult, error) {
	canon, err := canonicalArgs(args)
	if err != nil {
		return nil, err
	}
	c, err := s.connFor(ctx, t.upstream, req.Session, p)
	if err != nil {
		return nil, err
	}
	// A reconnection re-checks the pins; a definition that changed
	// meanwhile is not called.
	s.mu.RLock()
	cur := s.tools[t.exposed]
	s.mu.RUnlock()
	if cur == nil || !cur.enabled {
		return nil, errors.New("the tool's definition changed; call not forwarded")
	}
	id := t.upstream.ids.Add(1)
	cl := &call{ss: req.Session, ctx: ctx, progressToken: req.Params.GetProgressToken()}
	// Ask the upstream for every log level (the 2026-07-28 protocol takes
	// it per request); the client's own level filters what it receives.
	params := &mcp.CallToolParams{Name: t.def.Name, Arguments: canon,
		Meta: mcp.Meta{mcp.MetaKeyLogLevel: "debug"}}
	if cl.progressToken != nil {
		params.SetProgressToken(fmt.Sprintf("chatmcp-%d", id))
	}
	c.mu.Lock()
	c.inflight[id] = cl
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.inflight, id)
		c.mu.Unlock()
	}()
	res, err := c.cs.CallTool(ctx, params)
	if err != nil {
		return nil, err
	}
	return s.redactResult(req, res)
}

// connFor returns the connection a call of p in session ss uses: the
// shared one, or for per-session upstreams one dialled with the layer-2
// credentials bound to (p's principal id, ss). The principal id is the
// token chain's, so a token attenuated from p's never shares it.
func (s *Server) connFor(ctx context.Context, u *backend, ss *mcp.ServerSession, p *authz.Principal) (*conn, error) {
	if !u.perSes {
		if c := u.sharedConn(); c != nil {
			return c, nil
		}
		return s.reconnect(ctx, u)
	}
	sid := sessionID(ss)
	key := p.ChainID + "/" + sid
	u.mu.Lock()
	c := u.bySes[key]
	u.mu.Unlock()
	if c != nil {
		return c, nil
	}
	creds := s.creds.Get(p.ChainID, sid)
	sp, err := s.spec(u.cfg, creds, false)
	if err != nil {
		return nil, err // names the missing credential, never a value
	}
	c, err = s.dial(s.ctx, u, sp)
	if err != nil {
		return nil, errors.New("connecting with your credentials failed")
	}
	u.mu.Lock()
	if old := u.bySes[key]; old != nil {
		u.mu.Unlock()
		c.cs.Close()
		return old, nil
	}
	u.bySes[key] = c
	u.mu.Unlock()
	s.watch(u, c, key)
	return c, nil
}

// watch forgets c when its upstream goes away (a stdio process exits, an
// HTTP session ends), so that the next call dials a new connection.
func (s *Server) watch(u *backend, c *conn, key string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.cs.Wait()
		if s.ctx.Err() != nil {
			return
		}
		u.mu.Lock()
		lost := false
		if key == "" && u.shared == c {
			u.shared, lost = nil, true
		}
		if key != "" && u.bySes[key] == c {
			delete(u.bySes, key)
			lost = true
		}
		u.mu.Unlock()
		if lost {
			s.log.Warn("upstream connection lost; the next call reconnects", "upstream", u.cfg.Name)
		}
	}()
}

// reconnect dials the shared connection again and re-checks the tools
// against their pins before any call uses it.
func (s *Server) reconnect(ctx context.Context, u *backend) (*conn, error) {
	u.dialMu.Lock()
	defer u.dialMu.Unlock()
	if c := u.sharedConn(); c != nil {
		return c, nil
	}
	sp, err := s.spec(u.cfg, nil, true)
	if err != nil {
		return nil, err
	}
	c, err := s.dial(s.ctx, u, sp)
	if err != nil {
		return nil, errors.New("upstream unavailable")
	}
	if err := s.syncTools(ctx, u, c); err != nil {
		c.cs.Close()
		return nil, errors.New("upstream unavailable")
	}
	u.mu.Lock()
	u.shared = c
	u.mu.Unlock()
	s.watch(u, c, "")
	return c, nil
}

// dropSession closes per-session upstream connections and forgets layer-2
// credentials of a finished MCP session.
func (s *Server) dropSession(sid string) {
	s.creds.DropSession(sid)
	s.mu.Lock()
	delete(s.sessions, sid)
	ups := make([]*backend, 0, len(s.upstreams))
	for _, u := range s.upstreams {
		ups = append(ups, u)
	}
	s.mu.Unlock()
	for _, u := range ups {
		u.mu.Lock()
		for k, c := range u.bySes {
			if strings.HasSuffix(k, "/"+sid) {
				c.cs.Close()
				delete(u.bySes, k)
			}
		}
		u.mu.Unlock()
	}
}

func sessionID(ss *mcp.ServerSession) string {
	if ss == nil {
		return ""
	}
	return ss.ID()
}

// redactFor returns the redactor for what goes to req's session: layer-1
// secrets plus the session's own layer-2 credentials.
func (s *Server) redactFor(req *mcp.CallToolRequest) interface{ String(string) string } {
	p := principalOf(req.Extra)
	if p == nil {
		return s.redactor
	}
	creds := s.creds.Get(p.ChainID, sessionID(req.Session))
	if len(creds) == 0 {
		return s.redactor
	}
	vals := make([][]byte, 0, len(creds))
	for _, v := range creds {
		vals = append(vals, v)
	}
	return s.redactor.With(vals...)
}

// redactResult scrubs a tool result. The fast path (nothing to redact)
// costs one encoding of the result.
func (s *Server) redactResult(req *mcp.CallToolRequest, res *mcp.CallToolResult) (*mcp.CallToolResult, error) {
	r := s.redactor
	if p := principalOf(req.Extra); p != nil {
		if creds := s.creds.Get(p.ChainID, sessionID(req.Session)); len(creds) > 0 {
			vals := make([][]byte, 0, len(creds))
			for _, v := range creds {
				vals = append(vals, v)
			}
			r = r.With(vals...)
		}
	}
	if r.Empty() {
		return res, nil
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encoding result: %w", err)
	}
	out := r.JSON(b)
	if &out[0] == &b[0] {
		return res, nil
	}
	var clean mcp.CallToolResult
	if err := json.Unmarshal(out, &clean); err != nil {
		return nil, fmt.Errorf("decoding redacted result: %w", err)
	}
	return &clean, nil
}

// redactCopy copies in to out through JSON with every secret redacted.
func (s *Server) redactCopy(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(s.redactor.JSON(b), out)
}

// forwardProgress maps the upstream's progress token back to the client's.
func (s *Server) forwardProgress(ctx context.Context, c *conn, p *mcp.ProgressNotificationParams) {
	tok, ok := p.ProgressToken.(string)
	if !ok || !strings.HasPrefix(tok, "chatmcp-") {
		return
	}
	var id uint64
	if _, err := fmt.Sscanf(tok, "chatmcp-%d", &id); err != nil {
		return
	}
	c.mu.Lock()
	cl := c.inflight[id]
	c.mu.Unlock()
	if cl == nil || cl.progressToken == nil || cl.ss == nil {
		return
	}
	out := *p
	out.ProgressToken = cl.progressToken
	out.Message = s.redactor.String(out.Message)
	cl.ss.NotifyProgress(cl.ctx, &out)
}

// forwardLog sends an upstream log message, redacted, to the client
// sessions entitled to it: for a per-session connection its session; for a
// shared one, the sessions with a call in flight on it.
func (s *Server) forwardLog(ctx context.Context, u *backend, c *conn, p *mcp.LoggingMessageParams) {
	var out mcp.LoggingMessageParams
	if err := s.redactCopy(p, &out); err != nil {
		return
	}
	if out.Logger == "" {
		out.Logger = u.cfg.Name
	} else {
		out.Logger = u.cfg.Name + "/" + out.Logger
	}
	// One message per session, on the stream of one of its calls.
	seen := map[*mcp.ServerSession]context.Context{}
	c.mu.Lock()
	for _, cl := range c.inflight {
		if cl.ss != nil {
			seen[cl.ss] = cl.ctx
		}
	}
	c.mu.Unlock()
	for ss, cctx := range seen {
		ss.Log(cctx, &out)
	}
}

// withDeadlineOf returns parent (the client request's context, for
// routing) cancelled also when other (the upstream's request) ends.
func withDeadlineOf(parent, other context.Context) context.Context {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(other, cancel)
	context.AfterFunc(ctx, func() { stop() })
	return ctx
}
