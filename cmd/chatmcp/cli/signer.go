package cli

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/signerclient"
)

func newSignerCmd(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "signer",
		Short: "Talk to a chatmcp-signer: tokens, signatures, approvals (docs/payments.md)",
		Long: `chatmcp-signer holds a Solana key in a TEE and signs only what its policy
allows, reserving budget before it signs. These commands verify the signer's
RA-TLS evidence against an attestation policy (--policy, else $CHATMCP_POLICY;
admin commands may instead trust the pins in the signer's data directory).

Exit codes: 0 signed (or done); 3 refused, with one line naming the policy
rule (or the refused token or attestation); 2 a malformed transaction (or
invalid attestation evidence); 1 usage or I/O errors.`,
	}
	c.AddCommand(newSignerTokenCmd(env), newSignerSignCmd(env), newSignerPubkeyCmd(env), newSignerApprovalsCmd(env), newSignerReleaseCmd(env))
	return c
}

// signerFlags are the flags every signer command shares.
type signerFlags struct {
	signer, policy, data, tokenFile string
}

func (f *signerFlags) register(c *cobra.Command, admin bool) {
	c.Flags().StringVar(&f.signer, "signer", "", "signer base URL, https://host:port (required)")
	c.Flags().StringVar(&f.policy, "policy", "", "attestation policy the signer's RA-TLS evidence must satisfy (else $CHATMCP_POLICY)")
	if admin {
		c.Flags().StringVar(&f.data, "data", "./signer-data", "signer data directory: admin.token and tls-pins.json")
		c.Flags().StringVar(&f.tokenFile, "token-file", "", "file holding the admin token (else $CHATMCP_SIGNER_TOKEN, else DATA/admin.token)")
	}
}

// client returns a signer client trusting the signer by the attestation
// policy or, for admin commands, by the data directory's pins.
func (f *signerFlags) client(c *cobra.Command, env *Env, admin bool) (*signerclient.Client, error) {
	if f.signer == "" {
		return nil, &ExitError{Code: ExitUsage, Err: errors.New("--signer is required"), Hint: "e.g. --signer https://127.0.0.1:8446"}
	}
	if u, err := url.Parse(f.signer); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, exitf(ExitUsage, "--signer %q is not an https:// URL", f.signer)
	}
	pins := ""
	if admin {
		pins = filepath.Join(f.data, "tls-pins.json")
	}
	trust, err := trustFor(f.policy, env, pins)
	if err != nil {
		return nil, err
	}
	cfg, err := trust.TLSConfig()
	if err != nil {
		return nil, &ExitError{Code: ExitUsage, Err: err, Hint: "pass --policy FILE (an attestation policy the signer must satisfy)"}
	}
	return &signerclient.Client{BaseURL: f.signer, HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}}, nil
}

func (f *signerFlags) admin(c *cobra.Command, env *Env) (*signerclient.Admin, error) {
	cl, err := f.client(c, env, true)
	if err != nil {
		return nil, err
	}
	switch {
	case f.tokenFile != "":
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, exitf(ExitUsage, "reading admin token: %w", err)
		}
		cl.Token = strings.TrimSpace(string(b))
	case env.getenv("CHATMCP_SIGNER_TOKEN") != "":
		cl.Token = strings.TrimSpace(env.getenv("CHATMCP_SIGNER_TOKEN"))
	default:
		b, err := os.ReadFile(filepath.Join(f.data, "admin.token"))
		if err != nil {
			return nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("no admin token: %w", err),
				Hint: "pass --data DIR of the signer, set CHATMCP_SIGNER_TOKEN, or --token-file FILE"}
		}
		cl.Token = strings.TrimSpace(string(b))
	}
	return &signerclient.Admin{Client: *cl}, nil
}

// signerError maps an error talking to the signer to an exit code: a
// policy rule, a refused token or a rejected attestation is 3, a malformed
// transaction or invalid evidence 2, anything else 1. It branches on
// reason codes only.
func signerError(err error) error {
	if check, ok := attest.CheckOf(err); ok {
		code := ExitRejected
		if check.Invalid() {
			code = ExitInvalid
		}
		return &ExitError{Code: code, Err: fmt.Errorf("signer attestation rejected: %w", err)}
	}
	var ae *signerclient.Error
	if errors.As(err, &ae) {
		switch {
		case signerapi.IsRule(ae.Reason):
			return &ExitError{Code: ExitRejected, Err: errors.New(ae.Msg)}
		case ae.Reason == signerapi.ReasonMalformedTransaction:
			return &ExitError{Code: ExitInvalid, Err: errors.New(ae.Msg)}
		case ae.Reason == signerapi.ReasonUnauthorized:
			return &ExitError{Code: ExitRejected, Err: errors.New(ae.Msg), Hint: "check the token"}
		}
	}
	return &ExitError{Code: ExitUsage, Err: err}
}

func newSignerTokenCmd(env *Env) *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "Mint capability tokens for a signer (admin)"}
	var (
		f       signerFlags
		budget  string
		ttl     time.Duration
		subject string
		asJSON  bool
	)
	mint := &cobra.Command{
		Use:   "mint --signer URL [--budget AMOUNT/PERIOD] [--ttl D] [--subject NAME] [--json]",
		Short: "Ask a signer for a new capability token",
		Long: `Mints a token for the signer. --budget adds a budget caveat: at most AMOUNT
base units in any rolling PERIOD, enforced by the signer for this token and
every token attenuated from it (chatmcp token attenuate works offline).
The admin token comes from --token-file, $CHATMCP_SIGNER_TOKEN or
DATA/admin.token.`,
		Example: `  chatmcp signer token mint --signer https://127.0.0.1:8446 --budget 5000000/24h --ttl 24h
  chatmcp signer token mint --signer https://127.0.0.1:8446 --data ./signer-data --subject agent --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a, err := f.admin(c, env)
			if err != nil {
				return err
			}
			req := signerapi.MintRequest{Budget: budget, Subject: subject}
			if ttl != 0 {
				req.TTL = ttl.String()
			}
			m, err := a.Mint(c.Context(), req)
			if err != nil {
				return signerError(err)
			}
			return printToken(env, asJSON, tokenJSON(*m))
		},
	}
	f.register(mint, true)
	mint.Flags().StringVar(&budget, "budget", "", "budget caveat AMOUNT/PERIOD, e.g. 5000000/24h")
	mint.Flags().DurationVar(&ttl, "ttl", 0, "lifetime (default 24h, at most 720h)")
	mint.Flags().StringVar(&subject, "subject", "", "principal name (the per-principal window and the audit log)")
	mint.Flags().BoolVar(&asJSON, "json", false, `print {"id","token","expires"}`)
	var rf signerFlags
	revoke := &cobra.Command{
		Use:   "revoke --signer URL ID",
		Short: "Revoke a signer token id (and every token attenuated from it) or chain id",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			a, err := rf.admin(c, env)
			if err != nil {
				return err
			}
			if err := a.Revoke(c.Context(), args[0]); err != nil {
				return signerError(err)
			}
			return nil
		},
	}
	rf.register(revoke, true)
	c.AddCommand(mint, revoke)
	return c
}

// readTx reads TX: base64, or @FILE holding base64.
func readTx(arg string) ([]byte, error) {
	s := arg
	if name, ok := strings.CutPrefix(arg, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, exitf(ExitUsage, "reading %s: %w", name, err)
		}
		s = string(b)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, exitf(ExitInvalid, "malformed transaction: not base64: %v", err)
	}
	return b, nil
}

func newSignerSignCmd(env *Env) *cobra.Command {
	var (
		f      signerFlags
		token  string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "sign --signer URL --policy FILE [--token T] TX",
		Short: "Ask the signer to sign a transaction (base64 wire bytes, or @FILE)",
		Long: `Sends a Solana wire transaction (base64, or @FILE holding it) to the signer
with a capability token (--token, else $CHATMCP_TOKEN). On success prints the
transaction with the signer's signature added (base64) and exits 0. A policy
refusal exits 3 with one line naming the rule; a malformed transaction
exits 2; usage and I/O errors exit 1.`,
		Example: `  chatmcp signer sign --signer https://127.0.0.1:8446 --policy policy.yaml --token "$T" "$(cat tx.b64)"
  chatmcp signer sign --signer https://127.0.0.1:8446 --policy policy.yaml --token "$T" @tx.b64`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			wire, err := readTx(args[0])
			if err != nil {
				return err
			}
			if token == "" {
				token = env.getenv("CHATMCP_TOKEN")
			}
			if token == "" {
				return &ExitError{Code: ExitUsage, Err: errors.New("no capability token"), Hint: "pass --token T or set CHATMCP_TOKEN (chatmcp signer token mint)"}
			}
			cl, err := f.client(c, env, false)
			if err != nil {
				return err
			}
			cl.Token = token
			r, err := cl.SignTransaction(c.Context(), wire)
			if err != nil {
				return signerError(err)
			}
			if asJSON {
				return printJSONLine(env.Stdout, struct {
					Transaction string `json:"transaction"`
					Signature   string `json:"signature"`
					Amount      uint64 `json:"amount"`
				}{base64.StdEncoding.EncodeToString(r.Transaction), r.Signature, r.Amount})
			}
			fmt.Fprintln(env.Stdout, base64.StdEncoding.EncodeToString(r.Transaction))
			return nil
		},
	}
	f.register(c, false)
	c.Flags().StringVar(&token, "token", "", "capability token for the signer (else $CHATMCP_TOKEN)")
	c.Flags().BoolVar(&asJSON, "json", false, `print {"transaction","signature","amount"}`)
	return c
}

func newSignerPubkeyCmd(env *Env) *cobra.Command {
	var (
		f      signerFlags
		asJSON bool
	)
	c := &cobra.Command{
		Use:     "pubkey --signer URL --policy FILE [--json]",
		Short:   "Print the signer's Solana address, after verifying its attestation",
		Example: `  chatmcp signer pubkey --signer https://127.0.0.1:8446 --policy policy.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := f.client(c, env, false)
			if err != nil {
				return err
			}
			p, err := cl.Pubkey(c.Context())
			if err != nil {
				return signerError(err)
			}
			if p.Dev {
				fmt.Fprintln(env.Stderr, "chatmcp: warning: this signer runs on the SIMULATED TEE (--dev): its evidence proves nothing; never fund its key")
			}
			if asJSON {
				return printJSONLine(env.Stdout, p)
			}
			fmt.Fprintln(env.Stdout, p.PublicKey)
			return nil
		},
	}
	f.register(c, false)
	c.Flags().BoolVar(&asJSON, "json", false, `print {"public_key","audience",…}`)
	return c
}

func newSignerApprovalsCmd(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "approvals",
		Short: "List, approve and deny sign requests above approve_above (admin)",
		Long: `A signer holds every transaction that moves more than its policy's
approve_above until a person decides, for up to its approval_timeout (default
5m). The budget is reserved while it waits; a denial or a timeout releases it.`,
	}
	var f signerFlags
	list := &cobra.Command{
		Use: "list --signer URL", Short: "List waiting requests (JSON lines)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a, err := f.admin(c, env)
			if err != nil {
				return err
			}
			l, err := a.Approvals(c.Context())
			if err != nil {
				return signerError(err)
			}
			for _, x := range l {
				if err := printJSONLine(env.Stdout, x); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f.register(list, true)
	c.AddCommand(list)
	for _, approve := range []bool{true, false} {
		var df signerFlags
		name := map[bool]string{true: "approve", false: "deny"}[approve]
		d := &cobra.Command{
			Use: name + " --signer URL ID", Short: strings.ToUpper(name[:1]) + name[1:] + " a waiting request", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				a, err := df.admin(c, env)
				if err != nil {
					return err
				}
				if err := a.Decide(c.Context(), args[0], approve); err != nil {
					return signerError(err)
				}
				return nil
			},
		}
		df.register(d, true)
		c.AddCommand(d)
	}
	return c
}

func newSignerReleaseCmd(env *Env) *cobra.Command {
	var f signerFlags
	c := &cobra.Command{
		Use:   "release --signer URL SIGNATURE",
		Short: "Release the budget reserved for a signature that was never used (admin)",
		Long: `A signature's reservation counts against every cap until it ages out of the
window. Release it only after checking that the transaction did not land and
cannot (its blockhash expired): the signer does not ask the chain itself, so
that an RPC endpoint cannot free budget by lying.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			a, err := f.admin(c, env)
			if err != nil {
				return err
			}
			r, err := a.Release(c.Context(), args[0])
			if err != nil {
				return signerError(err)
			}
			return printJSONLine(env.Stdout, r)
		},
	}
	f.register(c, true)
	return c
}
