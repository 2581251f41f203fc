package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/mcpbridge"
	"github.com/chatmcp/chatmcp/ratls"
	"github.com/chatmcp/chatmcp/signerclient"
	"github.com/chatmcp/chatmcp/solrpc"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/chatmcp/chatmcp/x402pay"
)

// payFlags are connect's flags for paid tools: pay through a
// chatmcp-signer holding the payer's key, within the token's budget.
type payFlags struct {
	with, token, rpc, network, max, signerPolicy string
	assets                                       []string
}

func (f *payFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.with, "pay-with", "", "pay for paid tools (x402) through this chatmcp-signer (https://host:port)")
	fl.StringVar(&f.token, "pay-token", "", "the signer's capability token (else $CHATMCP_PAY_TOKEN)")
	fl.StringVar(&f.rpc, "pay-rpc", "", "Solana RPC URL for blockhashes and mint decimals (else $CHATMCP_PAY_RPC)")
	fl.StringVar(&f.network, "pay-network", x402.SolanaDevnet, "the CAIP-2 network to pay on")
	fl.StringVar(&f.max, "pay-max", "", "the most one call may cost, in the asset's atomic units (required with --pay-with)")
	fl.StringVar(&f.signerPolicy, "signer-policy", "", "attestation policy the signer's RA-TLS evidence must satisfy (else --policy)")
	fl.StringSliceVar(&f.assets, "pay-asset", nil, "SPL mint to pay in (repeatable; required with --pay-with)")
}

// check validates the flags before anything is dialed: with --pay-with,
// the token, the RPC URL and a positive --pay-max are required.
func (f *payFlags) check(env *Env) (tok, rpc string, max uint64, err error) {
	if f.with == "" {
		return "", "", 0, nil
	}
	if u, err := url.Parse(f.with); err != nil || u.Scheme != "https" || u.Host == "" {
		return "", "", 0, exitf(ExitUsage, "--pay-with %q is not an https:// URL", f.with)
	}
	tok = firstNonEmpty(f.token, env.getenv("CHATMCP_PAY_TOKEN"))
	rpc = firstNonEmpty(f.rpc, env.getenv("CHATMCP_PAY_RPC"))
	max, perr := strconv.ParseUint(f.max, 10, 64)
	switch {
	case tok == "":
		return "", "", 0, &ExitError{Code: ExitUsage, Err: errors.New("--pay-with needs the signer's capability token"), Hint: "pass --pay-token or set CHATMCP_PAY_TOKEN (from 'chatmcp signer token mint')"}
	case rpc == "":
		return "", "", 0, &ExitError{Code: ExitUsage, Err: errors.New("--pay-with needs a Solana RPC URL"), Hint: "pass --pay-rpc or set CHATMCP_PAY_RPC"}
	case perr != nil || max == 0:
		return "", "", 0, exitf(ExitUsage, "--pay-max must be a positive amount in atomic units, not %q", f.max)
	}
	if _, err := x402.ParseNetwork(f.network); err != nil {
		return "", "", 0, exitf(ExitUsage, "--pay-network: %w", err)
	}
	if len(f.assets) == 0 {
		return "", "", 0, exitf(ExitUsage, "--pay-with needs --pay-asset MINT: the mint(s) to pay in")
	}
	return tok, rpc, max, nil
}

// pay returns the bridge's PayFunc, or nil without --pay-with. It asks
// the signer for its address (over RA-TLS, verified against the policy).
func (f *payFlags) pay(ctx context.Context, env *Env, gatewayPolicy string) (mcpbridge.PayFunc, error) {
	tok, rpc, max, err := f.check(env)
	if err != nil || f.with == "" {
		return nil, err
	}
	v, err := raTLSVerifier(firstNonEmpty(f.signerPolicy, gatewayPolicy), env)
	if err != nil {
		return nil, err
	}
	sc := &signerclient.Client{BaseURL: f.with, Token: tok,
		HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: ratls.ClientConfig(v), ForceAttemptHTTP2: true}}}
	remote, err := x402pay.NewRemote(ctx, sc)
	if err != nil {
		return nil, signerError(err)
	}
	payer := &x402pay.Payer{RPC: &solrpc.Client{URL: rpc}, Address: remote.Key, Signer: remote, Network: f.network, Assets: f.assets, MaxAmount: max}
	fmt.Fprintf(env.Stderr, "chatmcp connect: paid tools are paid by %s through the signer at %s, at most %d a call on %s\n", remote.Key, f.with, max, f.network)
	return func(ctx context.Context, pr *x402.PaymentRequired) (*x402.PaymentPayload, error) {
		for i := range pr.Accepts {
			if a := &pr.Accepts[i]; a.Scheme == x402.SchemeExact && a.Network == f.network {
				hctx, stop := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() {
					defer close(done)
					announceHeld(hctx, sc, env.Stderr)
				}()
				p, err := payer.Pay(ctx, a, pr.Resource)
				stop()
				<-done
				return p, err
			}
		}
		return nil, fmt.Errorf("no accepted payment is %s on %s", x402.SchemeExact, f.network)
	}, nil
}

// announceHeld says on w, once per request, which payment the signer
// holds for a person (above its approve_above) while the call waits, so
// the user can pass its id on to the token's approver or the signer's
// operator. It polls the token's own held requests until ctx ends.
func announceHeld(ctx context.Context, sc *signerclient.Client, w io.Writer) {
	seen := map[string]bool{}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l, err := sc.Approvals(ctx)
		if err != nil {
			continue
		}
		for _, a := range l {
			if seen[a.ID] {
				continue
			}
			seen[a.ID] = true
			who := "the signer's operator"
			if a.Approver != "" {
				who = "approver " + a.Approver
			}
			fmt.Fprintf(w, "chatmcp connect: the signer holds payment %s (%d of %s to %s) until %s decides it; the call waits\n", a.ID, a.Amount, a.Mint, a.Recipient, who)
		}
	}
}
