package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/devices"
	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/kbsapi"
	"github.com/chatmcp/chatmcp/kbsclient"
	"github.com/spf13/cobra"
)

// EnvKBSToken names the environment variable holding the KBS admin token.
const EnvKBSToken = "CHATMCP_KBS_TOKEN"

// newKBSCmd builds `chatmcp kbs`.
//
// Exit codes: 0 success; 1 usage, I/O or connection error; 2 the request
// was malformed or unauthorized (4xx other than a policy refusal); 3 the
// KBS refused to release (attestation, policy, nonce, revocation).
func newKBSCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "kbs", Short: "Administer a key broker and fetch secrets from it"}
	var kbsURL, tokenFile string
	cmd.PersistentFlags().StringVar(&kbsURL, "kbs", "", "KBS base URL, e.g. http://127.0.0.1:8743")
	admin := func() (*kbsclient.AdminClient, error) {
		if kbsURL == "" {
			return nil, exitf(ExitUsage, "--kbs URL is required")
		}
		tok := env.getenv(EnvKBSToken)
		if tokenFile != "" {
			b, err := os.ReadFile(tokenFile)
			if err != nil {
				return nil, exitf(ExitUsage, "reading --token-file: %v", err)
			}
			tok = strings.TrimSpace(string(b))
		}
		if tok == "" {
			return nil, &ExitError{Code: ExitUsage, Err: errors.New("no admin token"), Hint: "set " + EnvKBSToken + " or pass --token-file DIR/admin.token"}
		}
		return &kbsclient.AdminClient{BaseURL: kbsURL, Token: tok}, nil
	}

	secret := &cobra.Command{Use: "secret", Short: "Create, rotate, list, re-police and revoke secrets (admin)"}
	secret.PersistentFlags().StringVar(&tokenFile, "token-file", "", "file holding the admin token (default: $"+EnvKBSToken+")")

	var value, fromFile, policyFile string
	put := &cobra.Command{
		Use:   "put NAME (--value V | --from-file F) --policy POLICY.yaml",
		Short: "Create a secret, or rotate it to a new version",
		Long: `Put stores a secret under an attestation policy. When NAME exists it is
rotated: a new version becomes current (and a revocation is lifted), the old
version is kept but never released again.`,
		Example: `  chatmcp kbs secret put github-token --from-file token.txt --policy policy.yaml --kbs http://127.0.0.1:8743`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ac, err := admin()
			if err != nil {
				return err
			}
			if (value == "") == (fromFile == "") {
				return exitf(ExitUsage, "give exactly one of --value and --from-file")
			}
			v := []byte(value)
			if fromFile != "" {
				if v, err = os.ReadFile(fromFile); err != nil {
					return exitf(ExitUsage, "%v", err)
				}
			}
			pol, err := readPolicy(policyFile)
			if err != nil {
				return err
			}
			info, err := ac.Put(c.Context(), args[0], v, pol)
			if err != nil {
				return kbsExit(err)
			}
			fmt.Fprintf(env.Stdout, "%s version %d (policy sha256 %s)\n", info.Name, info.Version, info.PolicySHA256)
			return nil
		},
	}
	put.Flags().StringVar(&value, "value", "", "the secret value (visible in the process list: prefer --from-file)")
	put.Flags().StringVar(&fromFile, "from-file", "", "read the secret value from this file")
	put.Flags().StringVar(&policyFile, "policy", "", "attestation policy YAML file (required)")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List secrets: names, versions, policy digests, revocation (never values)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			ac, err := admin()
			if err != nil {
				return err
			}
			ss, err := ac.List(c.Context())
			if err != nil {
				return kbsExit(err)
			}
			if asJSON {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(kbsapi.SecretList{Secrets: ss})
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tVERSIONS\tPOLICY SHA256\tREVOKED")
			for _, s := range ss {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%v\n", s.Name, s.Version, len(s.Versions), s.PolicySHA256[:16], s.Revoked)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	policy := &cobra.Command{
		Use:   "policy NAME --policy FILE",
		Short: "Replace a secret's attestation policy",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ac, err := admin()
			if err != nil {
				return err
			}
			pol, err := readPolicy(policyFile)
			if err != nil {
				return err
			}
			info, err := ac.SetPolicy(c.Context(), args[0], pol)
			if err != nil {
				return kbsExit(err)
			}
			fmt.Fprintf(env.Stdout, "%s policy sha256 %s\n", info.Name, info.PolicySHA256)
			return nil
		},
	}
	policy.Flags().StringVar(&policyFile, "policy", "", "attestation policy YAML file (required)")

	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Stop releasing a secret at once (until it is put again)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ac, err := admin()
			if err != nil {
				return err
			}
			info, err := ac.Revoke(c.Context(), args[0])
			if err != nil {
				return kbsExit(err)
			}
			fmt.Fprintf(env.Stdout, "%s revoked (version %d)\n", info.Name, info.Version)
			return nil
		},
	}
	secret.AddCommand(put, list, policy, revoke)

	var tee string
	fetch := &cobra.Command{
		Use:   "fetch --kbs URL --tee TEE NAME",
		Short: "Run the attestation handshake as a workload and print the secret",
		Long: `Fetch asks the KBS for a nonce, produces fresh evidence binding it and an
ephemeral HPKE key, and prints the released value on stdout. On refusal it
exits 3 with one line naming the reason. --tee sim produces INSECURE simulated
evidence (for a --dev KBS); sevsnp, tdx, nitro and tpm use this machine's TEE
device (configfs-tsm, /dev/sev-guest, /dev/tdx_guest, /dev/nsm, /dev/tpmrm0).`,
		Example: `  chatmcp kbs fetch --kbs http://127.0.0.1:8743 --tee sim github-token
  chatmcp kbs fetch --kbs https://kbs.internal:8743 --tee sevsnp github-token`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if kbsURL == "" {
				return exitf(ExitUsage, "--kbs URL is required")
			}
			var a attest.Attester
			switch attest.TEE(tee) {
			case attest.Sim:
				sa, err := sim.NewAttester(&sim.Options{Getenv: env.getenv, Now: env.now})
				if err != nil {
					return exitf(ExitUsage, "%v", err)
				}
				a = sa
			case "":
				return exitf(ExitUsage, "--tee is required (sim, sevsnp, tdx, nitro or tpm)")
			default:
				da, err := devices.New(attest.TEE(tee))
				if err != nil {
					return exitf(ExitUsage, "--tee %s: %v", tee, err)
				}
				a = da
			}
			cl := &kbsclient.Client{BaseURL: kbsURL, Attester: a}
			v, err := cl.Fetch(c.Context(), args[0])
			if err != nil {
				return kbsExit(err)
			}
			_, err = env.Stdout.Write(v)
			return err
		},
	}
	fetch.Flags().StringVar(&tee, "tee", "", "TEE to attest with: sim, sevsnp, tdx, nitro or tpm")
	cmd.AddCommand(secret, fetch)
	return cmd
}

func readPolicy(path string) (string, error) {
	if path == "" {
		return "", exitf(ExitUsage, "--policy FILE is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", exitf(ExitUsage, "%v", err)
	}
	if _, err := attest.ParsePolicy(b); err != nil {
		return "", exitf(ExitInvalid, "%s: %v", path, err)
	}
	return string(b), nil
}

// kbsExit maps a KBS client error to an exit code: refusals of release
// exit 3, other 4xx exit 2, everything else 1.
func kbsExit(err error) error {
	var ke *kbsclient.Error
	if !errors.As(err, &ke) {
		return &ExitError{Code: ExitUsage, Err: err}
	}
	code := ExitInvalid
	switch {
	case ke.Status == http.StatusForbidden:
		code = ExitRejected
	case ke.Status >= 500 || ke.Status < 400:
		code = ExitUsage
	}
	return &ExitError{Code: code, Err: ke}
}
