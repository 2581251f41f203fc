package signer_test

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/signer"
	"github.com/chatmcp/chatmcp/signer/signertest"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
)

// blockhashOffset is where a legacy message's recent blockhash starts in
// wire bytes with one signature: the benchmark writes a counter there so
// that each decision signs a distinct message.
func blockhashOffset(wire []byte) int {
	nkeys := int(wire[1+64+3]) // one-byte shortvec: fewer than 128 keys
	return 1 + 64 + 3 + 1 + 32*nkeys
}

type nopAudit struct{}

func (nopAudit) Append(context.Context, audit.Entry) error { return nil }

// BenchmarkSignerDecision measures one signer decision (parse, policy,
// reservation, signature, audit entry) and its parts, against the one
// ed25519 signature inside it (docs/BENCHMARKS.md, "Signer").
func BenchmarkSignerDecision(b *testing.B) {
	w := newWorld(b)
	kp, payer := signertest.NewKeypair(b)
	w.payer = payer
	wire := signertest.Wire(b, payer, signertest.ComputeUnitLimit(50000), signertest.ComputeUnitPrice(1000), signertest.TransferChecked(b, 1, payer, w.mint, w.recipient))
	msg := wire[65:]
	pol := w.policy(b, "")
	pol.Window.Max = 1 << 62
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	b.Run("ed25519-sign", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(priv, msg)
		}
	})
	b.Run("parse+policy", func(b *testing.B) {
		for b.Loop() {
			tx, err := signer.Parse(wire)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := pol.Evaluate(tx, payer); err != nil {
				b.Fatal(err)
			}
		}
	})
	tokKey, _ := captoken.NewKey()
	raw, _ := captoken.Mint(tokKey, captoken.Claims{Audience: "signer", Subject: "bench", Tools: []string{"*"}, Expires: time.Now().Add(time.Hour)})
	raw, _ = captoken.Attenuate(raw, captoken.Caveat{Budget: &captoken.Budget{Amount: 1 << 62, Period: 24 * time.Hour}})
	tok, err := (&captoken.Verifier{Key: tokKey, Audience: "signer", Revocations: captoken.NoRevocations{}}).Verify(context.Background(), raw)
	if err != nil {
		b.Fatal(err)
	}
	off := blockhashOffset(wire)
	stores := map[string]func(testing.TB) *store.DB{"sqlite": storetest.SQLite, "postgres": storetest.Postgres}
	for _, name := range []string{"sqlite", "postgres"} {
		for _, withAudit := range []bool{false, true} {
			label := name + "/ledger"
			if withAudit {
				label += "+audit"
			}
			b.Run(label, func(b *testing.B) {
				db := stores[name](b)
				ledger, err := signer.OpenLedger(context.Background(), db, nil)
				if err != nil {
					b.Fatal(err)
				}
				var aud signer.Auditor = nopAudit{}
				if withAudit {
					akey, _ := audit.LoadOrCreateKey(filepath.Join(b.TempDir(), "audit.key"))
					l, err := audit.Open(context.Background(), filepath.Join(b.TempDir(), "audit.jsonl"), &audit.Options{Signer: akey})
					if err != nil {
						b.Fatal(err)
					}
					defer l.Close()
					aud = l
				}
				s, err := signer.New(&signer.Options{Key: kp, Policy: pol, Ledger: ledger, Audit: aud})
				if err != nil {
					b.Fatal(err)
				}
				tx := append([]byte(nil), wire...)
				var n uint64
				for b.Loop() {
					n++
					binary.BigEndian.PutUint64(tx[off:], n)
					if _, err := s.SignTransaction(context.Background(), tok, tx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
