// Package daemon runs the chatmcp-agent process: it loads the
// configuration, fetches the agent's wallet (and the model's API key) from
// the key broker with the TEE's evidence, publishes its device's evidence
// bound to its effective configuration, and runs package agent until its
// context ends.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/chatmcp/chatmcp/agent"
	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/devices"
	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/attest/verifiers"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/internal/daemon"
	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/kbsclient"
	"github.com/chatmcp/chatmcp/ratls"
	"github.com/chatmcp/chatmcp/signerclient"
	"github.com/chatmcp/chatmcp/solrpc"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/x402pay"
)

// Options configure Run.
type Options struct {
	// Config is the configuration file. Required.
	Config string
	// Dev uses the INSECURE simulated TEE (attest/sim) and accepts
	// policies that allow simulated evidence. If false, a gateway or model
	// policy that allows sim is refused.
	Dev bool
	// Attester is the TEE attester when not Dev. If nil, the machine's
	// (attest/devices.Detect).
	Attester attest.Attester
	// Stderr receives the banner (the agent's address). If nil, os.Stderr.
	Stderr io.Writer
	// Logger receives operational logs (never plaintext). If nil, text to
	// Stderr.
	Logger *slog.Logger
	// Readiness, if non-nil, gets the check "relay" once the agent has
	// signed in and published its evidence.
	Readiness *ops.Readiness
	// Ready, if non-nil, is called with the agent's address and effective
	// configuration once it serves.
	Ready func(addr wallet.Address, cfg agentapi.Config)
	// TurnTimeout, ApprovalWait and RefreshEvery (how often the evidence
	// is re-attested and published) are passed to agent.Options (zero: its
	// defaults).
	TurnTimeout, ApprovalWait, RefreshEvery time.Duration
}

// Run starts the agent and serves until ctx is done.
func Run(ctx context.Context, o *Options) error {
	stderr, log := daemon.Output(o.Stderr, o.Logger)
	o.Readiness.Declare("relay")
	if o.Config == "" {
		return errors.New("--config FILE is required")
	}
	cfg, err := agent.LoadConfig(o.Config)
	if err != nil {
		return err
	}
	att := o.Attester
	if o.Dev {
		fmt.Fprintln(stderr, "chatmcp-agent: WARNING: --dev: SIMULATED TEE evidence, which anyone can forge, and policies allowing it are accepted. Not for production.")
		if att, err = sim.NewAttester(nil); err != nil {
			return err
		}
	} else {
		for what, p := range map[string]*attest.Policy{"gateway.policy": cfg.GatewayPolicy, "model.policy": cfg.ModelPolicy, "pay.policy": cfg.SignerPolicy} {
			if p.Allows(attest.Sim) {
				return fmt.Errorf("%s allows the simulated TEE (sim): only with --dev", what)
			}
		}
		if att == nil {
			if att, err = devices.Detect(nil); err != nil {
				return fmt.Errorf("finding this machine's TEE: %w (use --dev for the simulated one)", err)
			}
		}
	}

	// Secrets from the key broker, released only to this image's evidence.
	kc := &kbsclient.Client{BaseURL: strings.TrimSuffix(cfg.KBS, "/"), Attester: att}
	wb, err := kc.Fetch(ctx, cfg.Wallet.Secret)
	if err != nil {
		return fmt.Errorf("fetching the wallet %q from the KBS: %w", cfg.Wallet.Secret, err)
	}
	w, err := wallet.ParseKeypair(wb)
	clear(wb)
	if err != nil {
		return fmt.Errorf("wallet secret %q: %w", cfg.Wallet.Secret, err)
	}
	apiKey := ""
	if cfg.Model.APIKey != nil {
		kb, err := kc.Fetch(ctx, cfg.Model.APIKey.Secret)
		if err != nil {
			return fmt.Errorf("fetching the model API key %q from the KBS: %w", cfg.Model.APIKey.Secret, err)
		}
		apiKey = strings.TrimSpace(string(kb))
	}

	checker := verifiers.New(nil)
	gwHTTP := &http.Client{Transport: &http.Transport{TLSClientConfig: ratls.ClientConfig(ratls.NewVerifier(checker, cfg.GatewayPolicy, nil)), ForceAttemptHTTP2: true}}
	modelHTTP := &http.Client{Timeout: 2 * time.Minute}
	if cfg.ModelPolicy != nil {
		modelHTTP.Transport = &http.Transport{TLSClientConfig: ratls.ClientConfig(ratls.NewVerifier(checker, cfg.ModelPolicy, nil))}
	}

	var payer *agent.Payer
	if p := cfg.Pay; p != nil {
		// The signer token is a secret like the wallet: it spends the
		// token's budget.
		tb, err := kc.Fetch(ctx, p.Token.Secret)
		if err != nil {
			return fmt.Errorf("fetching the signer token %q from the KBS: %w", p.Token.Secret, err)
		}
		sc := &signerclient.Client{BaseURL: p.Signer, Token: strings.TrimSpace(string(tb)),
			HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: ratls.ClientConfig(ratls.NewVerifier(checker, cfg.SignerPolicy, nil)), ForceAttemptHTTP2: true}}}
		remote, err := x402pay.NewRemote(ctx, sc)
		if err != nil {
			return fmt.Errorf("pay.signer %s: %w", p.Signer, err)
		}
		payer = &agent.Payer{Signer: sc, URL: p.Signer, Pay: &x402pay.Payer{RPC: &solrpc.Client{URL: p.RPC}, Address: remote.Key, Signer: remote,
			Network: p.Network, Assets: p.Assets, MaxAmount: p.MaxPerCall}}
		fmt.Fprintf(stderr, "chatmcp-agent: paid tools are paid by %s through the signer at %s, at most %d a call on %s\n", remote.Key, p.Signer, p.MaxPerCall, p.Network)
	}

	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return err
	}
	newChat := func() (*chat.Client, error) {
		return chat.New(&chat.Options{Relay: cfg.Relay, Wallet: w, Home: cfg.Data})
	}
	writer, err := newChat()
	if err != nil {
		return err
	}
	reader, err := newChat()
	if err != nil {
		return err
	}
	dev := writer.Device()
	// publish attests afresh and signs the writer in with the evidence.
	// The reader signs in without evidence, which keeps the published
	// evidence (a chat.Client is not for concurrent use, and only the
	// writer is refreshed).
	var tee attest.TEE
	publish := func(ctx context.Context, c *chat.Client) error {
		rd, err := agentapi.ReportData(dev.Cert.Signing, dev.Cert.HPKE, cfg.Effective.Digest())
		if err != nil {
			return err
		}
		ev, err := att.Attest(ctx, rd)
		if err != nil {
			return fmt.Errorf("producing evidence: %w", err)
		}
		tee = ev.TEE
		b, err := jsonv2.Marshal(&agentapi.Evidence{Evidence: ev, Config: cfg.Effective})
		if err != nil {
			return err
		}
		return c.PublishEvidence(ctx, b)
	}
	if err := publish(ctx, writer); err != nil {
		return fmt.Errorf("signing in to the relay %s: %w", cfg.Relay, err)
	}
	if err := reader.Login(ctx); err != nil {
		return fmt.Errorf("signing in to the relay %s: %w", cfg.Relay, err)
	}
	o.Readiness.Done("relay")

	a, err := agent.New(&agent.Options{Config: cfg.Effective, Reader: reader, Writer: writer,
		Model:   &agent.ModelClient{URL: cfg.Model.URL, Model: cfg.Model.Model, APIKey: apiKey, HTTPClient: modelHTTP},
		Gateway: &agent.Gateway{URL: cfg.Gateway.URL, HTTPClient: gwHTTP},
		Payer:   payer,
		Data:    cfg.Data, Logger: log, TurnTimeout: o.TurnTimeout, ApprovalWait: o.ApprovalWait,
		Refresh: publish, RefreshEvery: o.RefreshEvery})
	if err != nil {
		return err
	}
	attested := "attested (RA-TLS)"
	if !cfg.Effective.Model.Attested {
		attested = "NOT attested"
		if !agentapi.IsLoopback(cfg.Effective.Model.URL) {
			attested += " (model.attested: false)"
		}
	}
	fmt.Fprintf(stderr, "chatmcp-agent: %s is %s (device %s, %s evidence, configuration %s); model %s %s\n",
		cfg.Effective.Name, w.Address(), dev.Cert.Device, tee, cfg.Effective.Digest(), cfg.Effective.Model.URL, attested)
	if o.Ready != nil {
		o.Ready(w.Address(), cfg.Effective)
	}
	return a.Run(ctx)
}
