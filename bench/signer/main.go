// Command signer-bench measures chatmcp-signer decisions per second (parse,
// policy, atomic budget reservation, ed25519 signature, audit entry) with
// W concurrent requests, on SQLite and, when CHATMCP_TEST_POSTGRES_DSN is
// set, on a scratch PostgreSQL database, and reports them as a ratio to
// one core's ed25519 signatures per second (docs/BENCHMARKS.md, "Signer").
//
//	go run ./bench/signer [-workers 8] [-duration 5s]
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gagliardetto/solana-go"
	computebudget "github.com/gagliardetto/solana-go/programs/compute-budget"
	"github.com/gagliardetto/solana-go/programs/token"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/signer"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/wallet"
)

func main() {
	workers := flag.Int("workers", 8, "concurrent sign requests")
	duration := flag.Duration("duration", 5*time.Second, "measurement time per store")
	flag.Parse()
	if err := run(*workers, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "signer-bench:", err)
		os.Exit(1)
	}
}

func run(workers int, d time.Duration) error {
	ctx := context.Background()
	kp, err := wallet.Generate(rand.Reader)
	if err != nil {
		return err
	}
	payer := solana.PublicKeyFromBytes(kp.Address().PublicKey())
	mint, recipient := randomKey(), randomKey()
	src, _, _ := solana.FindAssociatedTokenAddress(payer, mint)
	dst, _, _ := solana.FindAssociatedTokenAddress(recipient, mint)
	tx, err := solana.NewTransaction([]solana.Instruction{
		computebudget.NewSetComputeUnitLimitInstruction(50000).Build(),
		computebudget.NewSetComputeUnitPriceInstruction(1000).Build(),
		token.NewTransferCheckedInstruction(1, 6, src, mint, dst, payer, nil).Build(),
	}, solana.Hash{}, solana.TransactionPayer(payer))
	if err != nil {
		return err
	}
	tx.Signatures = make([]solana.Signature, 1)
	wire, err := tx.MarshalBinary()
	if err != nil {
		return err
	}
	off := 1 + 64 + 3 + 1 + 32*int(wire[1+64+3])
	pol, err := signer.ParsePolicy([]byte(fmt.Sprintf(`programs: [TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA, ComputeBudget111111111111111111111111111111]
mints: [%s]
recipients: [%s]
max_per_tx: 1000000
window: {period: 24h, max: 4000000000000000000, per_principal: 4000000000000000000}
`, mint, recipient)))
	if err != nil {
		return err
	}
	tokKey, _ := captoken.NewKey()
	raw, _ := captoken.Mint(tokKey, captoken.Claims{Audience: "signer", Subject: "bench", Tools: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	raw, _ = captoken.Attenuate(raw, captoken.Caveat{Budget: &captoken.Budget{Amount: 1 << 62, Period: 24 * time.Hour}})
	tok, err := (&captoken.Verifier{Key: tokKey, Audience: "signer", Revocations: captoken.NoRevocations{}}).Verify(ctx, raw)
	if err != nil {
		return err
	}

	// One core's ed25519 signatures per second over the same message.
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	start, n := time.Now(), 0
	for time.Since(start) < time.Second {
		ed25519.Sign(priv, wire[65:])
		n++
	}
	sigRate := float64(n) / time.Since(start).Seconds()
	fmt.Printf("ed25519 sign, one core: %.0f/s\n", sigRate)

	dir, err := os.MkdirTemp("", "signer-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dsns := []string{filepath.Join(dir, "signer.db")}
	if admin := os.Getenv("CHATMCP_TEST_POSTGRES_DSN"); admin != "" {
		dsn, drop, err := scratchPostgres(ctx, admin)
		if err != nil {
			return err
		}
		defer drop()
		dsns = append(dsns, dsn)
	} else {
		fmt.Println("postgres: skipped (CHATMCP_TEST_POSTGRES_DSN is unset)")
	}
	for _, dsn := range dsns {
		db, err := store.Open(ctx, dsn)
		if err != nil {
			return err
		}
		ledger, err := signer.OpenLedger(ctx, db, nil)
		if err != nil {
			return err
		}
		akey, err := audit.LoadOrCreateKey(filepath.Join(dir, db.Dialect.String()+".audit.key"))
		if err != nil {
			return err
		}
		alog, err := audit.Open(ctx, filepath.Join(dir, db.Dialect.String()+".audit.jsonl"), &audit.Options{Signer: akey})
		if err != nil {
			return err
		}
		s, err := signer.New(&signer.Options{Key: kp, Policy: pol, Ledger: ledger, Audit: alog})
		if err != nil {
			return err
		}
		var done, failed atomic.Int64
		var seq atomic.Uint64
		var wg sync.WaitGroup
		deadline := time.Now().Add(d)
		t0 := time.Now()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				my := append([]byte(nil), wire...)
				for time.Now().Before(deadline) {
					binary.BigEndian.PutUint64(my[off:], seq.Add(1))
					if _, err := s.SignTransaction(ctx, tok, my); err != nil {
						failed.Add(1)
						continue
					}
					done.Add(1)
				}
			}()
		}
		wg.Wait()
		rate := float64(done.Load()) / time.Since(t0).Seconds()
		fmt.Printf("%s, %d workers: %.0f decisions/s (%d failed), ratio to ed25519 sign %.4f (1/%.0f)\n",
			db.Dialect, workers, rate, failed.Load(), rate/sigRate, sigRate/rate)
		alog.Close()
		db.Close()
	}
	return nil
}

func randomKey() solana.PublicKey {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	return solana.PublicKeyFromBytes(pub)
}

// scratchPostgres creates a database on the server admin names and
// returns its DSN and a function dropping it.
func scratchPostgres(ctx context.Context, admin string) (string, func(), error) {
	adb, err := store.Open(ctx, admin)
	if err != nil {
		return "", nil, err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := "signer_bench_" + hex.EncodeToString(rnd[:])
	if _, err := adb.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		adb.Close()
		return "", nil, err
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, errors.Join(err, adb.Close())
	}
	u.Path = "/" + name
	return u.String(), func() {
		adb.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		adb.Close()
	}, nil
}
