// Package svmtest starts the loopback Solana JSON-RPC server of e2e/svm
// (litesvm: the Solana runtime in process with the SPL programs loaded;
// TEST INFRASTRUCTURE, not a validator) for tests, installing its npm
// packages first, and sets up test tokens on it with real transactions.
package svmtest

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/internal/npmdeps"
	"github.com/chatmcp/chatmcp/solrpc"
	"github.com/gagliardetto/solana-go"
)

// SVM is one running runtime behind its RPC server.
type SVM struct {
	URL string
	RPC *solrpc.Client
	// Payer is a funded key that pays for setup transactions.
	Payer ed25519.PrivateKey
	// stdin is the server's standard input: it exits when stdin closes,
	// so the pipe is held here (a dropped *os.File is closed by its
	// finalizer).
	stdin io.Closer
}

// Start installs e2e/svm's npm packages when needed, starts `node
// rpc.mjs`, waits for its listening line and stops it when t ends.
func Start(t testing.TB) *SVM {
	t.Helper()
	e2e, err := npmdeps.E2EDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e2e, "svm")
	if _, err := npmdeps.Install(context.Background(), dir); err != nil {
		t.Fatalf("installing litesvm: %v", err)
	}
	cmd := exec.Command("node", "rpc.mjs")
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe() // closed when the test ends: the server exits
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the litesvm RPC server: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				line <- u
				return
			}
		}
		close(line)
	}()
	var url string
	select {
	case u, ok := <-line:
		if !ok {
			t.Fatalf("the litesvm RPC server exited: %s", stderr.String())
		}
		url = u
	case <-time.After(60 * time.Second):
		t.Fatalf("the litesvm RPC server did not start: %s", stderr.String())
	}
	s := &SVM{URL: url, RPC: &solrpc.Client{URL: url}, stdin: stdin}
	_, s.Payer = NewKey(t)
	s.Fund(t, PublicKey(s.Payer), 100_000_000_000)
	return s
}

// NewKey makes an ed25519 key.
func NewKey(t testing.TB) (solana.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return solana.PublicKeyFromBytes(pub), priv
}

// PublicKey is key's address.
func PublicKey(key ed25519.PrivateKey) solana.PublicKey {
	return solana.PublicKeyFromBytes(key.Public().(ed25519.PublicKey))
}

// Fund airdrops lamports to addr.
func (s *SVM) Fund(t testing.TB, addr solana.PublicKey, lamports uint64) {
	t.Helper()
	if _, err := s.RPC.RequestAirdrop(context.Background(), addr.String(), lamports); err != nil {
		t.Fatalf("airdrop: %v", err)
	}
}

// ExpireBlockhash moves the runtime to a new blockhash (test-only RPC).
func (s *SVM) ExpireBlockhash(t testing.TB) {
	t.Helper()
	if err := s.RPC.Call(context.Background(), "chatmcpTest_expireBlockhash", nil, nil); err != nil {
		t.Fatal(err)
	}
}

// Blockhash returns the latest blockhash.
func (s *SVM) Blockhash(t testing.TB) solana.Hash {
	t.Helper()
	bh, err := s.RPC.LatestBlockhash(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h, err := solana.HashFromBase58(bh.Blockhash)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Send signs ixs with the setup payer and signers and sends them.
func (s *SVM) Send(t testing.TB, ixs []solana.Instruction, signers ...ed25519.PrivateKey) string {
	t.Helper()
	tx, err := solana.NewTransaction(ixs, s.Blockhash(t), solana.TransactionPayer(PublicKey(s.Payer)))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[solana.PublicKey]ed25519.PrivateKey{PublicKey(s.Payer): s.Payer}
	for _, k := range signers {
		keys[PublicKey(k)] = k
	}
	if _, err := tx.Sign(func(pk solana.PublicKey) *solana.PrivateKey {
		if k, ok := keys[pk]; ok {
			p := solana.PrivateKey(k)
			return &p
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	raw, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.RPC.SendTransaction(context.Background(), raw)
	if err != nil {
		t.Fatalf("sending setup transaction: %v", err)
	}
	return sig
}

// mintSize and tokenAccountSize are the SPL Token account sizes.
const mintSize = 82

// NewMint creates an SPL Token mint with decimals whose mint authority is
// the returned key: a TEST token (e.g. a test USDC), on this runtime only.
func (s *SVM) NewMint(t testing.TB, decimals uint8) (solana.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	mint, mintKey := NewKey(t)
	_, auth := NewKey(t)
	var rent uint64
	if err := s.RPC.Call(context.Background(), "getMinimumBalanceForRentExemption", []any{mintSize}, &rent); err != nil {
		t.Fatalf("rent: %v", err)
	}
	create := binary.LittleEndian.AppendUint32(nil, 0) // System CreateAccount
	create = binary.LittleEndian.AppendUint64(create, rent)
	create = binary.LittleEndian.AppendUint64(create, mintSize)
	create = append(create, solana.TokenProgramID[:]...)
	init := []byte{20, decimals} // InitializeMint2
	authPub := PublicKey(auth)
	init = append(init, authPub[:]...)
	init = append(init, 0) // no freeze authority
	s.Send(t, []solana.Instruction{
		solana.NewInstruction(solana.SystemProgramID, solana.AccountMetaSlice{
			solana.Meta(PublicKey(s.Payer)).WRITE().SIGNER(), solana.Meta(mint).WRITE().SIGNER()}, create),
		solana.NewInstruction(solana.TokenProgramID, solana.AccountMetaSlice{solana.Meta(mint).WRITE()}, init),
	}, mintKey)
	return mint, auth
}

// CreateATA creates owner's associated token account for mint.
func (s *SVM) CreateATA(t testing.TB, owner, mint solana.PublicKey) solana.PublicKey {
	t.Helper()
	ata, _, err := solana.FindAssociatedTokenAddress(owner, mint)
	if err != nil {
		t.Fatal(err)
	}
	s.Send(t, []solana.Instruction{solana.NewInstruction(solana.SPLAssociatedTokenAccountProgramID, solana.AccountMetaSlice{
		solana.Meta(PublicKey(s.Payer)).WRITE().SIGNER(),
		solana.Meta(ata).WRITE(),
		solana.Meta(owner),
		solana.Meta(mint),
		solana.Meta(solana.SystemProgramID),
		solana.Meta(solana.TokenProgramID),
	}, []byte{1})}) // CreateIdempotent
	return ata
}

// MintTo mints amount of mint to the token account dst.
func (s *SVM) MintTo(t testing.TB, mint solana.PublicKey, auth ed25519.PrivateKey, dst solana.PublicKey, amount uint64) {
	t.Helper()
	s.Send(t, []solana.Instruction{solana.NewInstruction(solana.TokenProgramID, solana.AccountMetaSlice{
		solana.Meta(mint).WRITE(), solana.Meta(dst).WRITE(), solana.Meta(PublicKey(auth)).SIGNER(),
	}, binary.LittleEndian.AppendUint64([]byte{7}, amount))}, auth)
}

// Balance is a token account's balance.
func (s *SVM) Balance(t testing.TB, ata solana.PublicKey) uint64 {
	t.Helper()
	n, _, err := s.RPC.TokenBalance(context.Background(), ata.String())
	if err != nil {
		t.Fatalf("balance of %s: %v", ata, err)
	}
	return n
}

// Lamports is an account's SOL balance.
func (s *SVM) Lamports(t testing.TB, addr solana.PublicKey) uint64 {
	t.Helper()
	a, err := s.RPC.AccountInfo(context.Background(), addr.String())
	if err != nil {
		t.Fatalf("account %s: %v", addr, err)
	}
	return a.Lamports
}

// String names the runtime in test logs.
func (s *SVM) String() string { return fmt.Sprintf("litesvm (test runtime) at %s", s.URL) }
