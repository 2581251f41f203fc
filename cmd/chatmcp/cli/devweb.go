package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path/filepath"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/devstack"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/web"
)

// startDevWeb serves `chatmcp web` for one development user (name, whose
// wallet is DIR/NAME.json, made on first use) on a free loopback port,
// signed in already, with the stack's gateway admin, audit log and policy
// (also its agent policy: it accepts this process's SIMULATED measurement,
// the dev assistant's) and a token of its own, until ctx ends. It returns the user's launch URL.
func startDevWeb(ctx context.Context, st *devstack.Stack, dir, name string) (string, error) {
	path := filepath.Join(dir, name+".json")
	w, err := wallet.LoadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if w, err = wallet.Generate(rand.Reader); err == nil {
			err = w.WriteFile(path)
		}
	}
	if err != nil {
		return "", err
	}
	pol, err := attest.LoadPolicy(st.PolicyFile)
	if err != nil {
		return "", err
	}
	// The user's own gateway token, from which grants to the assistant
	// are derived.
	m, err := st.Admin.Mint(ctx, gwclient.MintRequest{Tools: []string{"*"}, TTL: "12h", Subject: name})
	if err != nil {
		return "", fmt.Errorf("minting %s's token: %w", name, err)
	}
	srv, err := web.New(&web.Options{Relay: st.RelayURL, Home: filepath.Join(dir, "homes"), Wallet: w, Admin: st.Admin,
		AuditFile: filepath.Join(st.GatewayData, "audit.jsonl"), PolicyFile: st.PolicyFile, AgentPolicy: pol, Token: m.Token})
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return "", err
	}
	go func() {
		srv.Serve(ctx, ln)
		srv.Close()
	}()
	return srv.LaunchURL(ln), nil
}
