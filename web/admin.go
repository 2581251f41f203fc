package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/internal/linediff"
)

type approvalView struct {
	gwclient.Approval
	Pretty string
}

type toolView struct {
	gwclient.PendingTool
	// Diff is the line diff of the pinned and the new definition; with no
	// pinned definition recorded, the new one as added lines.
	Diff []diffLine
}

// diffLine is a line of a definition diff, with its op as a class.
type diffLine struct {
	Class string // "same", "removed" or "added"
	Text  string // the line in unified style: op, then text
}

func definitionDiff(t gwclient.PendingTool) []diffLine {
	var out []diffLine
	for _, l := range linediff.JSON(t.OldDefinition, t.Definition) {
		c := map[linediff.Op]string{linediff.Same: "same", linediff.Removed: "removed", linediff.Added: "added"}[l.Op]
		out = append(out, diffLine{Class: c, Text: l.String()})
	}
	return out
}

type auditLine struct {
	N    int
	Text string
}

type adminData struct {
	Configured bool
	Gateway    string
	Approvals  []approvalView
	Tools      []toolView
	Minted     *gwclient.Minted
	Derived    string
	AuditFile  string
	AuditOK    string
	AuditBad   string
	Filter     string
	Lines      []auditLine
	Notice     string
}

// maxAuditLines is how many matching audit lines the browser shows.
const maxAuditLines = 200

// handleAdmin serves the gateway admin pages: pending approvals, changed
// tool definitions, tokens and the audit log.
func (s *Server) handleAdmin(w http.ResponseWriter, r *http.Request, sess *session) {
	d := adminData{Configured: s.opts.Admin != nil, AuditFile: s.opts.AuditFile, Filter: r.URL.Query().Get("filter")}
	a := s.opts.Admin
	if a == nil {
		s.renderPage(w, sess, "admin", &page{Title: "Gateway admin", Data: d})
		return
	}
	d.Gateway = a.BaseURL
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var errMsg string
	if r.Method == http.MethodPost {
		var err error
		switch r.URL.Path {
		case "/admin/approvals/approve", "/admin/approvals/deny":
			err = a.Decide(ctx, r.PostFormValue("id"), r.URL.Path == "/admin/approvals/approve")
			d.Notice = "Decision sent."
		case "/admin/tools/approve":
			err = a.ApproveTool(ctx, r.PostFormValue("name"), r.PostFormValue("sha256"))
			d.Notice = "Tool definition approved."
		case "/admin/tokens/mint":
			d.Minted, err = a.Mint(ctx, gwclient.MintRequest{Tools: splitList(r.PostFormValue("tools")), TTL: strings.TrimSpace(r.PostFormValue("ttl")), Subject: strings.TrimSpace(r.PostFormValue("subject"))})
		case "/admin/tokens/revoke":
			err = a.Revoke(ctx, strings.TrimSpace(r.PostFormValue("id")))
			d.Notice = "Token revoked, with every token derived from it."
		case "/admin/tokens/attenuate":
			d.Derived, err = attenuate(r.PostFormValue("token"), r.PostFormValue("tools"), r.PostFormValue("ttl"), s.opts.Now())
		default:
			http.NotFound(w, r)
			return
		}
		if err != nil {
			errMsg, d.Notice = err.Error(), ""
		}
	}
	if l, err := a.Approvals(ctx); err != nil {
		errMsg = join(errMsg, "Listing approvals: "+err.Error())
	} else {
		for _, ap := range l {
			d.Approvals = append(d.Approvals, approvalView{Approval: ap, Pretty: pretty(ap.Arguments)})
		}
	}
	if l, err := a.PendingTools(ctx); err != nil {
		errMsg = join(errMsg, "Listing changed tools: "+err.Error())
	} else {
		for _, t := range l {
			d.Tools = append(d.Tools, toolView{PendingTool: t, Diff: definitionDiff(t)})
		}
	}
	if s.opts.AuditFile != "" {
		d.AuditOK, d.AuditBad, d.Lines = browseAudit(s.opts.AuditFile, d.Filter)
	}
	if errMsg != "" {
		w.WriteHeader(http.StatusBadRequest)
	}
	s.renderPage(w, sess, "admin", &page{Title: "Gateway admin", Error: errMsg, Data: d})
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		out = append(out, f)
	}
	return out
}

// pretty indents JSON for reading; the gateway already redacted secrets.
func pretty(raw []byte) string {
	if len(raw) == 0 {
		return "(none)"
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// attenuate derives a narrower token offline, as `chatmcp token
// attenuate` does.
func attenuate(token, tools, ttl string, now time.Time) (string, error) {
	var cv captoken.Caveat
	if t := splitList(tools); len(t) > 0 {
		cv.Tools = t
	}
	if ttl = strings.TrimSpace(ttl); ttl != "" {
		d, err := time.ParseDuration(ttl)
		if err != nil || d <= 0 {
			return "", fmt.Errorf("lifetime %q is not a positive duration like 10m", ttl)
		}
		cv.Expires = now.Add(d)
	}
	if cv.Tools == nil && cv.Expires.IsZero() {
		return "", errors.New("nothing to narrow: give tools and/or a lifetime")
	}
	return captoken.Attenuate(strings.TrimSpace(token), cv)
}

// browseAudit verifies the log (open logs allowed: the gateway is
// writing it) and returns the last lines containing filter.
func browseAudit(path, filter string) (ok, bad string, lines []auditLine) {
	f, err := os.Open(path)
	if err != nil {
		return "", err.Error(), nil
	}
	defer f.Close()
	sum, err := audit.Inspect(f, &audit.VerifyOptions{AllowOpen: true})
	if err != nil {
		bad = err.Error()
	} else {
		ok = fmt.Sprintf("Intact: %d entries, %d signed checkpoints, %d lines after the last checkpoint; key %x (trusted from the log's header).", sum.Entries, sum.Checkpoints, sum.Unsealed, []byte(sum.Key))
	}
	if _, err := f.Seek(0, 0); err != nil {
		return ok, bad, nil
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if filter == "" || strings.Contains(sc.Text(), filter) {
			lines = append(lines, auditLine{N: n, Text: sc.Text()})
			if len(lines) > maxAuditLines {
				lines = lines[1:]
			}
		}
	}
	return ok, bad, lines
}
