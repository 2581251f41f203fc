package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/attest/tpm"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/ratls"
)

// newAttestCmd is the `chatmcp attest` group: evidence, verify, inspect.
func newAttestCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attest",
		Short: "Produce, verify and inspect TEE attestation evidence",
		Long: `Produce, verify and inspect TEE attestation evidence.

Exit codes of verify and inspect:
  0  evidence accepted; normalized claims printed as JSON on stdout
  1  usage, input/output or network error
  2  evidence invalid (malformed, signature, certificate, expired)
  3  valid evidence rejected by the policy (report data, measurement, debug,
     vmpl, tcb, not allowed)
A rejection prints one line "chatmcp: error: <check>: <reason>" on stderr,
where <check> is the word of the failed check. See docs/attestation.md.`,
	}
	cmd.AddCommand(newAttestEvidenceCmd(env), newAttestVerifyCmd(env), newAttestInspectCmd(env))
	return cmd
}

func newAttestEvidenceCmd(env *Env) *cobra.Command {
	var tee, reportData, out string
	cmd := &cobra.Command{
		Use:   "evidence --tee sim --report-data HEX [-o FILE]",
		Short: "Produce attestation evidence as a JSON envelope",
		Long: `Produce attestation evidence binding up to 64 bytes of report data
(zero-padded) and write it as a JSON evidence envelope.

Only the simulator (--tee sim) is available here. Simulated evidence is
INSECURE: it is signed with a publicly known key, anyone can forge it, and
verifiers reject it unless the policy lists sim. Its measurement is the
SHA-384 of this executable, or CHATMCP_SIM_MEASUREMENT (96 hex digits).`,
		Example: `  chatmcp attest evidence --tee sim --report-data 00112233 -o ev.json
  CHATMCP_SIM_MEASUREMENT=$(printf 'ab%.0s' $(seq 48)) chatmcp attest evidence --tee sim --report-data 01`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rd, err := parseReportData(reportData)
			if err != nil {
				return err
			}
			var a attest.Attester
			switch attest.TEE(tee) {
			case attest.Sim:
				sa, err := sim.NewAttester(&sim.Options{Getenv: env.getenv, Now: env.now})
				if err != nil {
					return exitf(ExitUsage, "%w", err)
				}
				a = sa
			case "":
				return &ExitError{Code: ExitUsage, Err: errors.New("--tee is required"), Hint: "use --tee sim"}
			default:
				return &ExitError{Code: ExitUsage, Err: fmt.Errorf("producing %s evidence is not supported by this command", tee),
					Hint: "only --tee sim is available; hardware evidence comes from the TEE's own device"}
			}
			var fixed [attest.ReportDataSize]byte
			copy(fixed[:], rd)
			ev, err := a.Attest(cmd.Context(), fixed)
			if err != nil {
				return exitf(ExitUsage, "attesting: %w", err)
			}
			b, err := json.MarshalIndent(ev, "", "  ")
			if err != nil {
				return exitf(ExitUsage, "encoding evidence: %w", err)
			}
			b = append(b, '\n')
			if out == "" || out == "-" {
				_, err = env.Stdout.Write(b)
			} else {
				err = os.WriteFile(out, b, 0o644)
			}
			if err != nil {
				return exitf(ExitUsage, "writing evidence: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&tee, "tee", "", "TEE type to attest with (only \"sim\")")
	f.StringVar(&reportData, "report-data", "", "report data to bind, hex, at most 64 bytes (zero-padded)")
	f.StringVarP(&out, "output", "o", "", "write the envelope to `FILE` instead of stdout")
	return cmd
}

func newAttestVerifyCmd(env *Env) *cobra.Command {
	var policyFile, tee, reportData, at string
	var certFiles, tpmAKFiles, tpmRootFiles []string
	cmd := &cobra.Command{
		Use:   "verify --policy FILE [--tee TYPE] [--report-data HEX] [--at RFC3339] [--certs FILE]... [--tpm-ak FILE]... [--tpm-roots FILE]... EVIDENCE",
		Short: "Verify evidence against a policy and print its claims",
		Long: `Verify attestation evidence against a policy and print its normalized claims.

EVIDENCE is a JSON evidence envelope or a raw vendor file: an SEV-SNP
report (1184 bytes; give the VCEK and ASK with --certs, once per PEM or DER
file), a TDX quote, a Nitro COSE_Sign1 document, or TPM evidence (--tee tpm).
The TEE type of a raw file is recognised from its bytes unless --tee names it.
Use "-" to read stdin.

--report-data is compared with the evidence's report data after zero-padding.
--at pins the verification time, so archived evidence is checked at its own
time. A policy that leaves the measurement open prints a warning on stderr.

A TPM quote proves something only when its attestation key (AK) is known to
belong to a TPM: name enrolled AK public keys with --tpm-ak (PEM), or CAs that
certify AKs (e.g. Google's vTPM "EK/AK CA Root") with --tpm-roots. With
neither, every TPM quote is rejected ("certificate: AK not trusted").

Exit codes: 0 accepted, 1 usage or I/O error, 2 invalid evidence,
3 rejected by the policy.`,
		Example: `  chatmcp attest verify --policy policy.yaml --report-data 00112233 ev.json
  chatmcp attest verify report.bin --policy snp.yaml --certs vcek.pem --certs ask.pem
  chatmcp attest verify --policy nitro.yaml --at 2025-12-25T13:16:00Z doc.cose`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if policyFile == "" {
				return &ExitError{Code: ExitUsage, Err: errors.New("--policy is required"), Hint: "see docs/attestation.md for the policy format"}
			}
			p, err := attest.LoadPolicy(policyFile)
			if err != nil {
				return exitf(ExitUsage, "%w", err)
			}
			if tee != "" && !attest.TEE(tee).Valid() {
				return exitf(ExitUsage, "--tee: unknown TEE type %q (known: %v)", tee, attest.KnownTEEs())
			}
			var rd []byte
			if reportData != "" {
				if rd, err = parseReportData(reportData); err != nil {
					return err
				}
			}
			now, err := parseAt(at, env)
			if err != nil {
				return err
			}
			raw, err := readLimited(args[0], env.Stdin, attest.MaxEnvelopeSize)
			if err != nil {
				return err
			}
			ev, err := attest.ParseEvidence(raw, attest.TEE(tee))
			if err != nil {
				return attestExit(err)
			}
			for _, f := range certFiles {
				ders, err := readCerts("--certs", f)
				if err != nil {
					return err
				}
				ev.Certs = append(ev.Certs, ders...)
			}
			tpmOpts, err := tpmTrust(tpmAKFiles, tpmRootFiles)
			if err != nil {
				return err
			}
			claims, err := verifiers.New(&verifiers.Options{TPM: tpmOpts}).Check(cmd.Context(), ev, p, &attest.CheckOptions{
				Now: now, ReportData: rd, Warn: warnTo(env.Stderr),
			})
			if err != nil {
				return attestExit(err)
			}
			return printClaims(env.Stdout, claims)
		},
	}
	f := cmd.Flags()
	f.StringVar(&policyFile, "policy", "", "attestation policy `FILE` (YAML; required)")
	f.StringVar(&tee, "tee", "", "TEE type of raw evidence: sevsnp, tdx, nitro, tpm, sim")
	f.StringVar(&reportData, "report-data", "", "expected report data, hex (zero-padded)")
	f.StringVar(&at, "at", "", "verification time, RFC 3339 (default now)")
	f.StringArrayVar(&certFiles, "certs", nil, "PEM or DER certificate `FILE` to add to the evidence (repeatable)")
	f.StringArrayVar(&tpmAKFiles, "tpm-ak", nil, "trusted TPM attestation key, PEM public key `FILE` (repeatable)")
	f.StringArrayVar(&tpmRootFiles, "tpm-roots", nil, "PEM `FILE` of CA certificates that certify TPM attestation keys (repeatable)")
	return cmd
}

// tpmTrust builds the TPM verifier's trust from --tpm-ak and --tpm-roots.
// It returns nil (trust no AK) when both are empty.
func tpmTrust(akFiles, rootFiles []string) (*tpm.Options, error) {
	if len(akFiles) == 0 && len(rootFiles) == 0 {
		return nil, nil
	}
	o := &tpm.Options{}
	for _, path := range akFiles {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, exitf(ExitUsage, "--tpm-ak: %w", err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "PUBLIC KEY" {
			return nil, exitf(ExitUsage, "--tpm-ak %s: no PUBLIC KEY block", path)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, exitf(ExitUsage, "--tpm-ak %s: %w", path, err)
		}
		o.TrustedAKs = append(o.TrustedAKs, k)
	}
	if len(rootFiles) > 0 {
		o.Roots = x509.NewCertPool()
		for _, path := range rootFiles {
			ders, err := readCerts("--tpm-roots", path)
			if err != nil {
				return nil, err
			}
			for _, der := range ders {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return nil, exitf(ExitUsage, "--tpm-roots %s: %w", path, err)
				}
				o.Roots.AddCert(c)
			}
		}
	}
	return o, nil
}

func newAttestInspectCmd(env *Env) *cobra.Command {
	var policyFile, at string
	var fresh bool
	cmd := &cobra.Command{
		Use:   "inspect URL [--policy FILE] [--at RFC3339] [--fresh]",
		Short: "Connect to an RA-TLS server and verify its attested certificate",
		Long: `Connect over TLS to URL (https://host:port or host:port), verify the
evidence in the server's RA-TLS certificate against the policy and its
binding to the certificate's key, and print the claims.

Without --policy, every hardware TEE is allowed with any measurement (a
warning says so) and the simulator is REJECTED: to inspect a development
server that uses the simulator, pass a policy that allows sim.
--fresh also fetches evidence over a new nonce from
/.well-known/chatmcp/attestation on the same connection and checks it.`,
		Example: `  chatmcp attest inspect https://gateway.example:8443 --policy prod.yaml
  chatmcp attest inspect localhost:8443 --policy dev-allow-sim.yaml --fresh`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := &attest.Policy{Allow: []attest.TEE{attest.SEVSNP, attest.TDX, attest.Nitro, attest.TPM}}
			if policyFile != "" {
				var err error
				if p, err = attest.LoadPolicy(policyFile); err != nil {
					return exitf(ExitUsage, "%w", err)
				}
			}
			now, err := parseAt(at, env)
			if err != nil {
				return err
			}
			base, addr, err := parseTarget(args[0])
			if err != nil {
				return err
			}
			v := ratls.NewVerifier(verifiers.New(nil), p, &ratls.VerifierOptions{
				Now: func() time.Time { return now }, Warn: warnTo(env.Stderr),
			})
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			d := &tls.Dialer{Config: ratls.ClientConfig(v)}
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return attestExit(err)
			}
			state := conn.(*tls.Conn).ConnectionState()
			conn.Close()
			claims, err := v.VerifyCertificate(ctx, state.PeerCertificates[0])
			if err != nil {
				return attestExit(err)
			}
			if fresh {
				if claims, err = v.CheckFresh(ctx, nil, base); err != nil {
					return attestExit(err)
				}
			}
			return printClaims(env.Stdout, claims)
		},
	}
	f := cmd.Flags()
	f.StringVar(&policyFile, "policy", "", "attestation policy `FILE` (default: hardware TEEs, any measurement, no sim)")
	f.StringVar(&at, "at", "", "verification time, RFC 3339 (default now)")
	f.BoolVar(&fresh, "fresh", false, "also check fresh evidence over a random nonce")
	return cmd
}

// attestExit maps an attestation rejection to its exit code: 2 for invalid
// evidence, 3 for a policy rejection. Other errors are usage or I/O (1).
// The message of an *attest.Error starts with its check word.
func attestExit(err error) error {
	var ae *attest.Error
	if errors.As(err, &ae) {
		code := ExitRejected
		if ae.Check.Invalid() {
			code = ExitInvalid
		}
		return &ExitError{Code: code, Err: ae}
	}
	return &ExitError{Code: ExitUsage, Err: err}
}

func parseReportData(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		return nil, exitf(ExitUsage, "--report-data: %w", err)
	}
	if len(b) > attest.ReportDataSize {
		return nil, exitf(ExitUsage, "--report-data: %d bytes, at most %d", len(b), attest.ReportDataSize)
	}
	return b, nil
}

func parseAt(at string, env *Env) (time.Time, error) {
	if at == "" {
		return env.now(), nil
	}
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return time.Time{}, exitf(ExitUsage, "--at: %w", err)
	}
	return t, nil
}

// parseTarget accepts https://host:port[/...] or host:port and returns the
// base URL and the address to dial.
func parseTarget(s string) (base, addr string, err error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", "", exitf(ExitUsage, "URL %q: want https://host:port or host:port", s)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	return "https://" + u.Host, host, nil
}

func readLimited(path string, stdin io.Reader, limit int) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, exitf(ExitUsage, "reading evidence: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, exitf(ExitUsage, "reading evidence: %w", err)
	}
	if len(b) > limit {
		return nil, &ExitError{Code: ExitInvalid, Err: attest.Errorf(attest.CheckMalformed, "evidence file exceeds %d bytes", limit)}
	}
	return b, nil
}

// readCerts returns the DER certificates of a PEM file (every CERTIFICATE
// block) or of a DER file.
func readCerts(flag, path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, exitf(ExitUsage, "%s: %w", flag, err)
	}
	if len(b) > attest.MaxCerts*attest.MaxCertSize*2 {
		return nil, exitf(ExitUsage, "%s %s: file too large", flag, path)
	}
	var ders [][]byte
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			ders = append(ders, blk.Bytes)
		}
	}
	if len(ders) == 0 {
		if strings.Contains(string(b), "-----BEGIN") {
			return nil, exitf(ExitUsage, "%s %s: no CERTIFICATE block", flag, path)
		}
		ders = append(ders, b) // DER; the verifier parses it strictly
	}
	return ders, nil
}

func warnTo(w io.Writer) func(string) {
	return func(msg string) { fmt.Fprintf(w, "chatmcp: %s\n", msg) }
}

func printClaims(w io.Writer, c *attest.Claims) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return exitf(ExitUsage, "encoding claims: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return exitf(ExitUsage, "writing claims: %w", err)
	}
	return nil
}
