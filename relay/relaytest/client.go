package relaytest

import (
	"crypto/rand"
	"testing"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/wallet"
)

// NewClient returns a chat client of relayURL for a fresh wallet, with its
// home in a temporary directory, and the wallet.
func NewClient(t testing.TB, relayURL string) (*chat.Client, *wallet.Keypair) {
	t.Helper()
	w, err := wallet.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := chat.New(&chat.Options{Relay: relayURL, Wallet: w, Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}
