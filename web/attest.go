package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/ratls"
)

// claimRow is one verified claim in words.
type claimRow struct {
	Name, Value, Meaning string
	Bad                  bool
}

type attestData struct {
	Target     string
	PolicyFile string
	Done       bool
	Accepted   bool
	Check      string // the check word that failed
	CheckText  string
	Reason     string
	Binding    string
	Claims     []claimRow
	Insecure   bool
}

// handleAttest is the attestation viewer: GET shows the form, POST
// connects to an RA-TLS server (gateway, KBS) or reads an evidence file
// and verifies it against a policy file.
func (s *Server) handleAttest(w http.ResponseWriter, r *http.Request, sess *session) {
	d := attestData{PolicyFile: s.opts.PolicyFile}
	if r.Method != http.MethodPost {
		s.renderPage(w, sess, "attest", &page{Title: "Attestation", Data: d})
		return
	}
	d.Target = strings.TrimSpace(r.PostFormValue("target"))
	if pf := strings.TrimSpace(r.PostFormValue("policy")); pf != "" {
		d.PolicyFile = pf
	}
	pol := &attest.Policy{Allow: []attest.TEE{attest.SEVSNP, attest.TDX, attest.Nitro, attest.TPM}}
	if d.PolicyFile != "" {
		var err error
		if pol, err = attest.LoadPolicy(d.PolicyFile); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			s.renderPage(w, sess, "attest", &page{Title: "Attestation", Error: "Policy file: " + err.Error(), Data: d})
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var claims *attest.Claims
	var err error
	if strings.HasPrefix(d.Target, "https://") || !strings.Contains(d.Target, "/") {
		claims, err = s.inspectURL(ctx, d.Target, pol)
		d.Binding = "The evidence is inside the server's TLS certificate, and its report data binds that certificate's public key (RA-TLS): the key that answered this connection is the one the TEE attested."
	} else {
		claims, err = s.inspectFile(d.Target, pol)
		d.Binding = "Evidence read from a file: nothing binds it to a live connection; it says what ran when it was made."
	}
	d.Done = true
	if claims != nil {
		d.Claims, d.Insecure = explain(claims), claims.Insecure
	}
	if err != nil {
		var ae *attest.Error
		if errors.As(err, &ae) {
			d.Check, d.Reason = string(ae.Check), ae.Msg
			d.CheckText = "The evidence was rejected by the policy."
			if ae.Check.Invalid() {
				d.CheckText = "The evidence itself is invalid (forged, corrupted, or not bound to this connection)."
			}
		} else {
			d.Reason = err.Error()
			d.CheckText = "The evidence could not be fetched or read."
		}
	} else {
		d.Accepted = true
	}
	s.renderPage(w, sess, "attest", &page{Title: "Attestation", Data: d})
}

func (s *Server) inspectURL(ctx context.Context, target string, pol *attest.Policy) (*attest.Claims, error) {
	addr := target
	if strings.HasPrefix(target, "https://") {
		u, err := url.Parse(target)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("%q is not an https:// URL", target)
		}
		addr = u.Host
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "443")
	}
	v := ratls.NewVerifier(verifiers.New(nil), pol, &ratls.VerifierOptions{Now: s.opts.Now})
	dl := &tls.Dialer{Config: ratls.ClientConfig(v)}
	conn, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		if _, ok := attest.CheckOf(err); ok {
			return nil, err
		}
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	state := conn.(*tls.Conn).ConnectionState()
	conn.Close()
	return v.VerifyCertificate(ctx, state.PeerCertificates[0])
}

// maxEvidenceFile bounds an evidence file the viewer reads.
const maxEvidenceFile = 1 << 20

func (s *Server) inspectFile(path string, pol *attest.Policy) (*attest.Claims, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxEvidenceFile {
		return nil, fmt.Errorf("%s is %d bytes, more than evidence can be (%d)", path, st.Size(), maxEvidenceFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ev, err := attest.ParseEvidence(b, "")
	if err != nil {
		return nil, err
	}
	return verifiers.New(nil).Check(context.Background(), ev, pol, &attest.CheckOptions{Now: s.opts.Now()})
}

// explain turns claims into rows a person can read.
func explain(c *attest.Claims) []claimRow {
	rows := []claimRow{
		{Name: "TEE type", Value: string(c.TEE), Meaning: "The kind of trusted execution environment that produced the evidence.", Bad: c.Insecure},
		{Name: "Measurement", Value: c.Measurement.String(), Meaning: "A hash of the code and configuration that was launched: compare it with the published build."},
		{Name: "Debug", Value: fmt.Sprint(c.Debug), Meaning: "When true, the host can read the TEE's memory: nothing inside is confidential.", Bad: c.Debug},
		{Name: "Report data", Value: c.ReportData.String(), Meaning: "Data the TEE bound into the evidence (here: the hash of the TLS key or a nonce)."},
	}
	if c.Insecure {
		rows = append(rows, claimRow{Name: "Simulated", Value: "yes", Meaning: "SIMULATED evidence: anyone can forge it. It proves nothing and default policies reject it.", Bad: true})
	}
	if !c.Time.IsZero() {
		rows = append(rows, claimRow{Name: "Produced at", Value: c.Time.UTC().Format(time.RFC3339), Meaning: "When the evidence was made; policies bound its age."})
	}
	if c.VMPL != nil {
		rows = append(rows, claimRow{Name: "VMPL", Value: fmt.Sprint(*c.VMPL), Meaning: "SEV-SNP privilege level of the requester: 0 is the guest kernel's own level."})
	}
	if c.TCBStatus != "" {
		rows = append(rows, claimRow{Name: "TCB status", Value: c.TCBStatus, Meaning: "Intel's verdict on the platform's firmware and microcode.", Bad: c.TCBStatus != "UpToDate"})
	}
	idx := make([]int, 0, len(c.PCRs))
	for i := range c.PCRs {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		rows = append(rows, claimRow{Name: fmt.Sprintf("PCR %d", i), Value: c.PCRs[i].String(), Meaning: "A platform configuration register: a hash chain of what was loaded."})
	}
	return rows
}
