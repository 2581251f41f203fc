package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/mcpbridge"
	"github.com/chatmcp/chatmcp/ratls"
)

func newConnectCmd(env *Env) *cobra.Command {
	var pay payFlags
	var (
		policy      string
		token       string
		credentials []string
	)
	c := &cobra.Command{
		Use:   "connect URL --policy FILE [--token T] [--credential NAME=VALUE]...",
		Short: "Bridge a desktop MCP client (stdio) to an attested gateway",
		Long: `connect is a stdio MCP server for desktop MCP clients (Claude Desktop, VS Code).
Before it forwards anything it verifies the gateway: the evidence in its RA-TLS
certificate and fresh evidence over a random nonce must satisfy the attestation
policy. When they do not, it never connects and exits non-zero. Then it relays
MCP over streamable HTTP to URL/mcp, sending the capability token (--token or
$CHATMCP_TOKEN) to the verified gateway only.

MCP versions: the gateway serves 2026-07-28 (stateless: server/discover, the
version and capabilities in each request's _meta, input_required rounds) and
2025-11-25, 2025-06-18, 2025-03-26 and 2024-11-05 (initialize and a session) at
once; connect relays whichever the desktop client speaks.

--credential values (layer 2) are sealed with HPKE to a key the attested
certificate key signed, and sent once the MCP session exists (a 2026-07-28
client: before its first request); the gateway keeps them in memory for this
session only (2026-07-28: for this token, until it expires). Everything on
stdout is MCP; messages for people go to stderr.

Exit codes: 0 the client closed the session, 1 usage or I/O error, 2 the
gateway's evidence is invalid, 3 the policy rejects the gateway. When connect
cannot connect (the gateway fails verification, refuses the token or cannot be
reached, or a flag is wrong) it still answers the MCP client on stdin: it
completes initialize and answers every request with a JSON-RPC error naming the
failed check, so the client shows the reason; it exits with the code above
when the client disconnects (at once when stdin is a terminal).`,
		Example: `  chatmcp connect https://127.0.0.1:8443 --policy gateway-policy.yaml --token "$TOKEN"
  CHATMCP_TOKEN=cmt1.… chatmcp connect https://gw.example:8443 --policy policy.yaml --credential GITHUB_TOKEN=ghp_…`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) (err error) {
			ctx := c.Context()
			defer func() {
				if err != nil && !errors.Is(err, mcpbridge.ErrRefused) {
					refuseClient(ctx, env, err)
				}
			}()
			base, err := gatewayBase(args[0])
			if err != nil {
				return err
			}
			if policy == "" {
				return &ExitError{Code: ExitUsage, Err: fmt.Errorf("--policy is required"), Hint: "connect verifies the gateway's attestation against a policy file before it forwards anything"}
			}
			if token == "" {
				token = env.getenv("CHATMCP_TOKEN")
			}
			if token == "" {
				return &ExitError{Code: ExitUsage, Err: fmt.Errorf("no capability token"), Hint: "pass --token or set CHATMCP_TOKEN (from 'chatmcp token mint')"}
			}
			tokenInfo, err := captoken.Parse(token)
			if err != nil {
				return &ExitError{Code: ExitUsage, Err: err, Hint: "the token should start with " + captoken.Prefix}
			}
			creds, err := parseCredentials(credentials)
			if err != nil {
				return err
			}
			if _, _, _, err := pay.check(env); err != nil {
				return err
			}
			v, err := raTLSVerifier(policy, env)
			if err != nil {
				return err
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: ratls.ClientConfig(v), ForceAttemptHTTP2: true}}
			vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			claims, err := v.CheckFresh(vctx, client, base)
			cancel()
			if err != nil {
				return verificationError(err)
			}
			describeGateway(env, base, claims)

			opts := &mcpbridge.Options{
				Endpoint: base + "/mcp",
				HTTP:     client,
				Token:    token,
				Logf:     func(f string, a ...any) { fmt.Fprintf(env.Stderr, "chatmcp connect: "+f+"\n", a...) },
			}
			if opts.Pay, err = pay.pay(ctx, env, policy); err != nil {
				return err
			}
			if len(creds) > 0 {
				// Sealed to the attested key and posted once: for a session
				// client after initialize, bound to its session; for a
				// stateless (2026-07-28) client before its first request,
				// bound to the token chain.
				post := func(ctx context.Context, send func(*gwclient.SealedCredentials) error) error {
					key, err := gwclient.FetchCredentialKey(ctx, client, base)
					if err != nil {
						return err
					}
					sealed, err := gwclient.SealCredentials(key, tokenInfo.ChainID(), creds)
					if err != nil {
						return err
					}
					if err := send(sealed); err != nil {
						return err
					}
					fmt.Fprintf(env.Stderr, "chatmcp connect: sealed %d credential(s) to the attested gateway key\n", len(creds))
					return nil
				}
				opts.AfterInitialize = func(ctx context.Context, sessionID string) error {
					if sessionID == "" {
						return fmt.Errorf("gateway assigned no MCP session; credentials need one")
					}
					return post(ctx, func(sc *gwclient.SealedCredentials) error {
						return gwclient.PostCredentials(ctx, client, base, token, sessionID, sc)
					})
				}
				opts.BeforeStateless = func(ctx context.Context, version string) error {
					return post(ctx, func(sc *gwclient.SealedCredentials) error {
						return gwclient.PostCredentialsStateless(ctx, client, base, token, version, sc)
					})
				}
			}
			local, err := (&mcp.IOTransport{Reader: io.NopCloser(env.Stdin), Writer: nopWriteCloser{env.Stdout}}).Connect(ctx)
			if err != nil {
				return err
			}
			if err := mcpbridge.Run(ctx, local, opts); err != nil {
				if errors.Is(err, mcpbridge.ErrRefused) {
					return &ExitError{Code: ExitUsage, Err: err}
				}
				return verificationError(err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&policy, "policy", "", "attestation policy the gateway must satisfy (required)")
	c.Flags().StringVar(&token, "token", "", "capability token (else $CHATMCP_TOKEN)")
	c.Flags().StringArrayVar(&credentials, "credential", nil, "NAME=VALUE layer-2 credential to seal to the gateway (repeatable)")
	pay.register(c)
	return c
}

// refuseClient tells the MCP client on stdin why connect will not connect:
// clients show a process that exits before answering only as "Connection
// closed", so connect answers as mcpbridge.Refuse does, with err, until the
// client goes. A terminal on stdin is a person, who reads err on stderr:
// then it returns at once.
func refuseClient(ctx context.Context, env *Env, err error) {
	if f, ok := env.Stdin.(*os.File); ok {
		if fi, serr := f.Stat(); serr == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return
		}
	}
	fmt.Fprintf(env.Stderr, "chatmcp connect: %v (answering the MCP client with this error until it disconnects)\n", err)
	local, cerr := (&mcp.IOTransport{Reader: io.NopCloser(env.Stdin), Writer: nopWriteCloser{env.Stdout}}).Connect(ctx)
	if cerr != nil {
		return
	}
	mcpbridge.Refuse(ctx, local, "chatmcp connect: "+err.Error())
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// gatewayBase normalizes URL: https only, no query, a trailing /mcp removed.
func gatewayBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", &ExitError{Code: ExitUsage, Err: fmt.Errorf("gateway URL %q is not https://host[:port]", raw)}
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/mcp")
	return strings.TrimSuffix(u.String(), "/"), nil
}

func parseCredentials(list []string) (map[string]string, error) {
	creds := map[string]string{}
	for _, kv := range list {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, exitf(ExitUsage, "--credential %q is not NAME=VALUE", strings.SplitN(kv, "=", 2)[0])
		}
		if _, dup := creds[name]; dup {
			return nil, exitf(ExitUsage, "--credential %s given twice", name)
		}
		creds[name] = value
	}
	return creds, nil
}

// verificationError maps a failure to reach or verify the gateway to an exit
// code by the attestation check that failed, if any. A rejection reads as
// the check and what was wrong, without the transport's wrappers (URL,
// nonce): it is what the MCP client shows.
func verificationError(err error) error {
	var ae *attest.Error
	if errors.As(err, &ae) {
		code := ExitRejected
		if ae.Check.Invalid() {
			code = ExitInvalid
		}
		return &ExitError{Code: code, Err: fmt.Errorf("gateway not verified, not connecting: %w", ae)}
	}
	return &ExitError{Code: ExitUsage, Err: err}
}

func describeGateway(env *Env, base string, c *attest.Claims) {
	fmt.Fprintf(env.Stderr, "chatmcp connect: %s verified: %s, measurement %s\n", base, c.TEE, c.Measurement)
	if c.Insecure {
		fmt.Fprintln(env.Stderr, "chatmcp connect: WARNING: the gateway runs on the SIMULATED TEE; its evidence proves nothing (development only)")
	}
}
