package signer_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/mr-tron/base58"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/signer"
	"github.com/chatmcp/chatmcp/signer/signertest"
	"github.com/chatmcp/chatmcp/signerapi"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/wallet"
)

type fixture struct {
	*world
	s       *signer.Signer
	key     *wallet.Keypair
	tokKey  *captoken.Key
	log     *audit.Log
	logPath string
	holds   chan signerapi.Approval
}

func newFixture(t *testing.T, db *store.DB, extra string, timeout time.Duration) *fixture {
	t.Helper()
	kp, payer := signertest.NewKeypair(t)
	w := newWorld(t)
	w.payer = payer
	ledger, err := signer.OpenLedger(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	akey, err := audit.LoadOrCreateKey(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "audit.jsonl")
	alog, err := audit.Open(context.Background(), logPath, &audit.Options{Signer: akey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	f := &fixture{world: w, key: kp, log: alog, logPath: logPath, holds: make(chan signerapi.Approval, 16)}
	f.s, err = signer.New(&signer.Options{Key: kp, Policy: w.policy(t, extra), Ledger: ledger, Audit: alog,
		ApprovalTimeout: timeout, OnHold: func(a signerapi.Approval) { f.holds <- a }})
	if err != nil {
		t.Fatal(err)
	}
	if f.tokKey, err = captoken.NewKey(); err != nil {
		t.Fatal(err)
	}
	return f
}

// token mints a verified signer token for subject, with an optional budget.
func (f *fixture) token(t testing.TB, subject string, budget string) *captoken.Verified {
	t.Helper()
	return f.verify(t, f.tokenString(t, subject, budget))
}

func (f *fixture) verify(t testing.TB, tok string) *captoken.Verified {
	t.Helper()
	v, err := (&captoken.Verifier{Key: f.tokKey, Audience: "signer", Revocations: captoken.NoRevocations{}}).Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *fixture) tokenString(t testing.TB, subject string, budget string) string {
	t.Helper()
	tok, err := captoken.Mint(f.tokKey, captoken.Claims{Audience: "signer", Subject: subject, Tools: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if budget != "" {
		b, err := captoken.ParseBudget(budget)
		if err != nil {
			t.Fatal(err)
		}
		if tok, err = captoken.Attenuate(tok, captoken.Caveat{Budget: b}); err != nil {
			t.Fatal(err)
		}
	}
	return tok
}

// pay is a fresh transfer of amount to the recipient (a fresh blockhash
// makes each message, and so each signature, distinct).
func (f *fixture) pay(t testing.TB, amount uint64) []byte {
	t.Helper()
	var bh solana.Hash
	copy(bh[:], signertest.NewAddress(t).Bytes())
	return signertest.WireWith(t, f.payer, bh, signertest.TransferChecked(t, amount, f.payer, f.mint, f.recipient))
}

func wantRule(t *testing.T, err error, rule string) {
	t.Helper()
	var r *signer.Refusal
	if !errors.As(err, &r) || r.Rule != rule {
		t.Fatalf("got %v, want a refusal by rule %s", err, rule)
	}
}

// TestSignTransaction: an allowed transfer comes back with a valid
// signature in the signer's slot, and the same bytes otherwise.
func TestSignTransaction(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t), "", time.Minute)
	wire := f.pay(t, 1000)
	resp, err := f.s.SignTransaction(context.Background(), f.token(t, "alice", ""), wire)
	if err != nil {
		t.Fatal(err)
	}
	tx := signertest.Decode(t, resp.Transaction)
	if err := tx.VerifySignatures(); err != nil {
		t.Fatalf("signed transaction does not verify: %v", err)
	}
	if tx.Signatures[0].String() != resp.Signature || resp.Amount != 1000 {
		t.Fatalf("response %+v", resp)
	}
	if string(resp.Transaction[65:]) != string(wire[65:]) {
		t.Fatal("the message changed")
	}
	// Signing the same message again reserves nothing more.
	again, err := f.s.SignTransaction(context.Background(), f.token(t, "alice", ""), wire)
	if err != nil || again.Signature != resp.Signature {
		t.Fatalf("second signature: %+v, %v", again, err)
	}
	b, _ := f.s.Budget(context.Background())
	if b.Reserved != 1000 {
		t.Fatalf("reserved %d, want 1000", b.Reserved)
	}
}

// TestLedgerCaps reaches the ledger's rules on both stores: the overall
// window, the per-principal window and the token's budget caveat, which
// attenuated tokens share.
func TestLedgerCaps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t.Run("window_fees", func(t *testing.T) {
			// Each transfer the key pays for costs at most 5000 lamports
			// (one signature, no priority fee): two fit in 10000. On a
			// fresh database: the fee window is everyone's.
			fresh := storetest.SQLite(t)
			if db.Dialect == store.Postgres {
				fresh = storetest.Postgres(t)
			}
			f := newFixture(t, fresh, "", time.Minute)
			f.s.Policy().Window.Max = 1 << 40
			f.s.Policy().Window.MaxFees = 10000
			tok := f.token(t, "fees", "")
			for range 2 {
				if _, err := f.s.SignTransaction(ctx, tok, f.pay(t, 1)); err != nil {
					t.Fatal(err)
				}
			}
			_, err := f.s.SignTransaction(ctx, tok, f.pay(t, 1))
			wantRule(t, err, signerapi.RuleWindowFees)
		})
		f := newFixture(t, db, "", time.Minute)
		t.Run("window", func(t *testing.T) {
			tok := f.token(t, "w", "")
			for range 3 {
				if _, err := f.s.SignTransaction(ctx, tok, f.pay(t, 1000000)); err != nil {
					t.Fatal(err)
				}
			}
			_, err := f.s.SignTransaction(ctx, tok, f.pay(t, 1))
			wantRule(t, err, signerapi.RuleWindow)
		})
		t.Run("window_principal", func(t *testing.T) {
			f := newFixture(t, db, "", time.Minute)
			f.s.Policy().Window.PerPrincipal = 1500
			// A fresh fixture shares db: start from a fresh overall window.
			f.s.Policy().Window.Max = 1 << 40
			if _, err := f.s.SignTransaction(ctx, f.token(t, "bob", ""), f.pay(t, 1000)); err != nil {
				t.Fatal(err)
			}
			_, err := f.s.SignTransaction(ctx, f.token(t, "bob", ""), f.pay(t, 1000))
			wantRule(t, err, signerapi.RuleWindowPrincipal)
			if _, err := f.s.SignTransaction(ctx, f.token(t, "carol", ""), f.pay(t, 1000)); err != nil {
				t.Fatalf("another principal: %v", err)
			}
		})
		t.Run("token_budget", func(t *testing.T) {
			f := newFixture(t, db, "", time.Minute)
			f.s.Policy().Window.Max = 1 << 40
			raw := f.tokenString(t, "dave", "1500/24h")
			if _, err := f.s.SignTransaction(ctx, f.verify(t, raw), f.pay(t, 1000)); err != nil {
				t.Fatal(err)
			}
			_, err := f.s.SignTransaction(ctx, f.verify(t, raw), f.pay(t, 1000))
			wantRule(t, err, signerapi.RuleTokenBudget)
			// A child attenuated offline draws on the same budget, even
			// with a looser budget of its own.
			child, err := captoken.Attenuate(raw, captoken.Caveat{Budget: &captoken.Budget{Amount: 1 << 40, Period: time.Hour}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.s.SignTransaction(ctx, f.verify(t, child), f.pay(t, 1000))
			wantRule(t, err, signerapi.RuleTokenBudget)
			if _, err := f.s.SignTransaction(ctx, f.verify(t, child), f.pay(t, 500)); err != nil {
				t.Fatalf("within the shared budget: %v", err)
			}
		})
	})
}

// TestBudgetRace: N concurrent signs against a cap of K transfers:
// exactly K succeed, on SQLite and PostgreSQL, for the policy window and
// for a token budget.
func TestBudgetRace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const n, amount = 12, 1000000
		f := newFixture(t, db, "", time.Minute) // window: 3,000,000 = 3 transfers
		tok := f.token(t, "racer", "")
		wires := make([][]byte, n)
		for i := range wires {
			wires[i] = f.pay(t, amount)
		}
		var ok, refused atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := f.s.SignTransaction(context.Background(), tok, wires[i])
				var r *signer.Refusal
				switch {
				case err == nil:
					ok.Add(1)
				case errors.As(err, &r) && r.Rule == signerapi.RuleWindow:
					refused.Add(1)
				default:
					t.Errorf("sign %d: %v", i, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok.Load() != 3 || refused.Load() != n-3 {
			t.Fatalf("%d signed, %d refused; want exactly 3 signed", ok.Load(), refused.Load())
		}
	})
}

// TestApprovals: above approve_above the request waits for a person;
// approval signs, denial and timeout refuse naming their rule and release
// the reservation.
func TestApprovals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storetest.SQLite(t), "", 500*time.Millisecond)
	f.s.Policy().MaxPerTx = 3000000
	f.s.Policy().Window.Max = 5000000
	tok := f.token(t, "eve", "")
	var wire []byte
	run := func(decide func(a signerapi.Approval)) (*signerapi.SignResponse, error) {
		wire = f.pay(t, 2500000)
		type result struct {
			r   *signerapi.SignResponse
			err error
		}
		done := make(chan result, 1)
		go func() {
			r, err := f.s.SignTransaction(ctx, tok, wire)
			done <- result{r, err}
		}()
		a := <-f.holds
		if a.Amount != 2500000 || a.Recipient != f.recipient.String() {
			t.Errorf("approval %+v", a)
		}
		if decide != nil {
			decide(a)
		}
		r := <-done
		return r.r, r.err
	}
	t.Run("approved", func(t *testing.T) {
		r, err := run(func(a signerapi.Approval) {
			if err := f.s.Decide(ctx, a.ID, true); err != nil {
				t.Error(err)
			}
		})
		if err != nil || r.Approval == "" {
			t.Fatalf("%+v, %v", r, err)
		}
	})
	t.Run("denied", func(t *testing.T) {
		_, err := run(func(a signerapi.Approval) { f.s.Decide(ctx, a.ID, false) })
		wantRule(t, err, signerapi.RuleApprovalDenied)
	})
	t.Run("the same transaction again while held", func(t *testing.T) {
		_, err := run(func(a signerapi.Approval) {
			// The first request waits; the same bytes again must not get
			// the signature around the person.
			_, err := f.s.SignTransaction(ctx, tok, wire)
			wantRule(t, err, signerapi.RuleApprovalPending)
			f.s.Decide(ctx, a.ID, false)
		})
		wantRule(t, err, signerapi.RuleApprovalDenied)
	})
	t.Run("timeout", func(t *testing.T) {
		_, err := run(nil)
		wantRule(t, err, signerapi.RuleApprovalTimeout)
	})
	// Only the approved one counts: denied and timed-out were released.
	if b, _ := f.s.Budget(ctx); b.Reserved != 2500000 {
		t.Fatalf("reserved %d, want 2500000", b.Reserved)
	}
	if err := f.s.Decide(ctx, "nope", true); !errors.Is(err, signer.ErrNotPending) {
		t.Fatalf("Decide(unknown) = %v", err)
	}
}

// TestSignerRules reaches the rules SignTransaction and SignMessage add
// to the policy's: the token's scope, lookup tables, message signing.
func TestSignerRules(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storetest.SQLite(t), "", time.Minute)
	t.Run("token_scope", func(t *testing.T) {
		v := f.token(t, "x", "")
		v.Blocks = append(v.Blocks, captoken.Block{Tools: []string{"sign_message"}})
		_, err := f.s.SignTransaction(ctx, v, f.pay(t, 1))
		wantRule(t, err, signerapi.RuleTokenScope)
	})
	t.Run("lookup_tables", func(t *testing.T) {
		table := signertest.NewAddress(t)
		tx, err := solana.NewTransaction([]solana.Instruction{signertest.TransferChecked(t, 5, f.payer, f.mint, f.recipient)}, signertest.Blockhash,
			solana.TransactionPayer(f.payer), solana.TransactionAddressTables(map[solana.PublicKey]solana.PublicKeySlice{table: {f.mint}}))
		if err != nil {
			t.Fatal(err)
		}
		tx.Signatures = make([]solana.Signature, tx.Message.Header.NumRequiredSignatures)
		wire, err := tx.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.s.SignTransaction(ctx, f.token(t, "x", ""), wire)
		wantRule(t, err, signerapi.RuleLookupTables)
	})
	t.Run("malformed", func(t *testing.T) {
		_, err := f.s.SignTransaction(ctx, f.token(t, "x", ""), []byte("not a transaction"))
		if !errors.Is(err, signer.ErrMalformed) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("message off", func(t *testing.T) {
		_, err := f.s.SignMessage(ctx, f.token(t, "x", ""), []byte(signerapi.OffchainMessagePrefix+"hi"))
		wantRule(t, err, signerapi.RuleMessage)
	})
	t.Run("message", func(t *testing.T) {
		f.s.Policy().SignMessages = true
		defer func() { f.s.Policy().SignMessages = false }()
		msg := []byte(signerapi.OffchainMessagePrefix + "hi")
		sig, err := f.s.SignMessage(ctx, f.token(t, "x", ""), msg)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base58.Decode(sig)
		if !ed25519.Verify(f.key.Address().PublicKey(), msg, raw) {
			t.Fatal("bad message signature")
		}
		// A transaction message is never signed as a message.
		_, err = f.s.SignMessage(ctx, f.token(t, "x", ""), f.pay(t, 1)[65:])
		wantRule(t, err, signerapi.RuleMessage)
	})
	// Every decision above is in the audit log, which verifies.
	lf, err := os.Open(f.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := audit.Verify(lf, nil); err != nil {
		t.Fatalf("audit log: %v", err)
	}
	b, _ := os.ReadFile(f.logPath)
	for _, want := range []string{`"reason":"token_scope"`, `"reason":"lookup_tables"`, `"reason":"malformed_transaction"`, `"reason":"message"`, `"action":"sign_message","decision":"granted"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("audit log has no %s", want)
		}
	}
}

type failingAudit struct{}

func (failingAudit) Append(context.Context, audit.Entry) error { return errors.New("disk full") }

// TestAuditFailClosed: when the decision cannot be audited nothing is
// signed and nothing stays reserved.
func TestAuditFailClosed(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	f := newFixture(t, db, "", time.Minute)
	ledger, err := signer.OpenLedger(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signer.New(&signer.Options{Key: f.key, Policy: f.s.Policy(), Ledger: ledger, Audit: failingAudit{}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.SignTransaction(ctx, f.token(t, "x", ""), f.pay(t, 1000))
	if err == nil || resp != nil {
		t.Fatalf("signed without an audit entry: %+v", resp)
	}
	if b, _ := s.Budget(ctx); b.Reserved != 0 {
		t.Fatalf("%d still reserved", b.Reserved)
	}
	if _, err := s.SignTransaction(ctx, f.token(t, "x", ""), []byte("junk")); err == nil {
		t.Fatal("a refusal that could not be audited returned no error")
	}
}
