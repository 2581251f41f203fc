package cli

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/gatewayapi"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/ratls"
)

// gatewayFlags are the flags every gateway admin command shares.
type gatewayFlags struct {
	gateway   string
	tokenFile string
	data      string
	policy    string
}

func (f *gatewayFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.gateway, "gateway", "", "gateway base URL, https://host:port (required)")
	c.Flags().StringVar(&f.tokenFile, "token-file", "", "file holding the admin token (else $CHATMCP_GATEWAY_TOKEN, else DATA/admin.token)")
	c.Flags().StringVar(&f.data, "data", "./gateway-data", "gateway data directory: admin.token and tls-pins.json")
	c.Flags().StringVar(&f.policy, "policy", "", "attestation policy to verify the gateway's RA-TLS certificate (else $CHATMCP_POLICY, else DATA/tls-pins.json)")
}

// admin returns an admin API client for the flags: the admin token from
// --token-file, $CHATMCP_GATEWAY_TOKEN or DATA/admin.token, and TLS trust
// from the policy (RA-TLS) or, when the token came from the data directory
// (or --data was given), its pins file.
func (f *gatewayFlags) admin(c *cobra.Command, env *Env) (*gwclient.Admin, error) {
	if f.gateway == "" {
		return nil, &ExitError{Code: ExitUsage, Err: errors.New("--gateway is required"), Hint: "e.g. --gateway https://127.0.0.1:8443"}
	}
	if u, err := url.Parse(f.gateway); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, &ExitError{Code: ExitUsage, Err: fmt.Errorf("--gateway %q is not an https:// URL", f.gateway)}
	}
	token, fromData, err := f.adminToken(env)
	if err != nil {
		return nil, err
	}
	trust, err := trustFor(f.policy, env, func() string {
		if fromData || c.Flags().Changed("data") {
			return filepath.Join(f.data, "tls-pins.json")
		}
		return ""
	}())
	if err != nil {
		return nil, err
	}
	cfg, err := trust.TLSConfig()
	if err != nil {
		return nil, &ExitError{Code: ExitUsage, Err: err, Hint: "pass --policy FILE (an attestation policy the gateway must satisfy), or --data DIR of a local gateway"}
	}
	return &gwclient.Admin{
		BaseURL: f.gateway,
		Token:   token,
		HTTP:    &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}},
	}, nil
}

func (f *gatewayFlags) adminToken(env *Env) (token string, fromData bool, err error) {
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", false, exitf(ExitUsage, "reading admin token: %w", err)
		}
		return strings.TrimSpace(string(b)), false, nil
	}
	if t := env.getenv("CHATMCP_GATEWAY_TOKEN"); t != "" {
		return strings.TrimSpace(t), false, nil
	}
	b, err := os.ReadFile(filepath.Join(f.data, "admin.token"))
	if err != nil {
		return "", false, &ExitError{Code: ExitUsage, Err: fmt.Errorf("no admin token: %w", err),
			Hint: "pass --token-file FILE, set CHATMCP_GATEWAY_TOKEN, or --data DIR of the gateway"}
	}
	return strings.TrimSpace(string(b)), true, nil
}

// trustFor builds the TLS trust: RA-TLS under the policy file (flag, else
// $CHATMCP_POLICY) or else pins (pinsFile, if non-empty).
func trustFor(policyFile string, env *Env, pinsFile string) (*gwclient.Trust, error) {
	if policyFile == "" {
		policyFile = env.getenv("CHATMCP_POLICY")
	}
	if policyFile != "" {
		v, err := raTLSVerifier(policyFile, env)
		if err != nil {
			return nil, err
		}
		return &gwclient.Trust{Verifier: v}, nil
	}
	return &gwclient.Trust{PinsFile: pinsFile}, nil
}

func raTLSVerifier(policyFile string, env *Env) (*ratls.Verifier, error) {
	pol, err := attest.LoadPolicy(policyFile)
	if err != nil {
		return nil, exitf(ExitUsage, "loading policy: %w", err)
	}
	return ratls.NewVerifier(verifiers.New(nil), pol, &ratls.VerifierOptions{
		Now:  env.now,
		Warn: func(msg string) { fmt.Fprintf(env.Stderr, "chatmcp: warning: %s\n", msg) },
	}), nil
}

// gatewayError maps an error talking to the gateway to an exit code: an
// attestation rejection is ExitInvalid or ExitRejected by its check, a
// refusal of the admin token (reason unauthorized or forbidden)
// ExitRejected. It branches on the gateway's reason codes only.
func gatewayError(err error) error {
	if check, ok := attest.CheckOf(err); ok {
		code := ExitRejected
		if check.Invalid() {
			code = ExitInvalid
		}
		return &ExitError{Code: code, Err: fmt.Errorf("gateway attestation rejected: %w", err)}
	}
	switch reason, _ := gwclient.ReasonOf(err); reason {
	case gatewayapi.ReasonUnauthorized, gatewayapi.ReasonForbidden:
		return &ExitError{Code: ExitRejected, Err: err, Hint: "check the admin token"}
	}
	return &ExitError{Code: ExitUsage, Err: err}
}
