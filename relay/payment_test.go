package relay_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/facilitator"
	"github.com/chatmcp/chatmcp/internal/svmtest"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/relay/relaytest"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/chatmcp/chatmcp/x402pay"
	"github.com/gagliardetto/solana-go"
)

// payWorld is a relay that takes payment stamps through a real
// facilitator on litesvm (TEST runtime), a test USDC, bob who sets a
// price, and alice who holds 1 test USDC and pays from her chat wallet.
type payWorld struct {
	svm        *svmtest.SVM
	relay      *relaytest.Relay
	mint       solana.PublicKey
	alice, bob *person
	aliceATA   solana.PublicKey
	bobATA     solana.PublicKey
	feePayer   string
}

func walletKey(p *person) solana.PublicKey {
	return solana.PublicKeyFromBytes(p.w.Address().PublicKey())
}

func newPayWorld(t *testing.T) *payWorld {
	s := svmtest.Start(t)
	w := &payWorld{svm: s, alice: newPerson(t), bob: newPerson(t)}
	mint, mintAuth := s.NewMint(t, 6)
	w.mint = mint
	w.aliceATA = s.CreateATA(t, walletKey(w.alice), mint)
	w.bobATA = s.CreateATA(t, walletKey(w.bob), mint)
	s.MintTo(t, mint, mintAuth, w.aliceATA, 1_000_000)
	_, fp := svmtest.NewKey(t)
	s.Fund(t, svmtest.PublicKey(fp), 1_000_000_000)
	fac, err := facilitator.New(context.Background(), storetest.SQLite(t), &facilitator.Options{
		Network: x402.SolanaLocal, RPC: s.RPC, FeePayer: facilitator.LocalKey{Key: fp}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: fac.Handler()}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	w.feePayer = svmtest.PublicKey(fp).String()
	w.relay = relaytest.Start(t, storetest.SQLite(t), relay.Options{DefaultDifficulty: 30, Payments: &stamp.Payment{
		Facilitator: &x402.FacilitatorClient{URL: "http://" + ln.Addr().String()},
		FeePayer:    svmtest.PublicKey(fp).String(), Network: x402.SolanaLocal, Assets: []string{mint.String()}, MinAmount: 1000}})
	return w
}

func (w *payWorld) payer(p *person, max uint64) *x402pay.Payer {
	return &x402pay.Payer{RPC: w.svm.RPC, Address: walletKey(p), Signer: x402pay.WalletSigner{Keypair: p.w}, Network: x402.SolanaLocal, Assets: []string{w.mint.String()}, MaxAmount: max}
}

func (w *payWorld) client(t *testing.T, p *person, payer chat.StampPayer) *chat.Client {
	c, err := chat.New(&chat.Options{Relay: w.relay.URL, Wallet: p.w, Home: p.home, Payer: payer})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPaidFirstContact: bob sets a price; alice's first message pays it
// (an x402 transfer whose memo binds the envelope) instead of 30 bits of
// work; the money moves exactly once and the message waits in bob's
// requests. Replaying alice's paid stamp on the same envelope, or on
// another message, is refused.
func TestPaidFirstContact(t *testing.T) {
	w := newPayWorld(t)
	ctx := context.Background()
	bob := w.client(t, w.bob, nil)
	if err := bob.SetPrice(ctx, &stamp.Price{Amount: "50000", Asset: w.mint.String(), Network: x402.SolanaLocal}); err != nil {
		t.Fatal(err)
	}
	if u, err := bob.User(ctx, w.bob.addr()); err != nil || u.Price == nil || u.Price.Amount != "50000" || u.Difficulty != 30 {
		t.Fatalf("bob's directory entry: %+v, %v", u, err)
	}
	alice := w.client(t, w.alice, w.payer(w.alice, 100_000))
	sent, err := alice.SendDM(ctx, w.bob.addr(), "hello bob, here is 0.05 test USDC")
	if err != nil {
		t.Fatal(err)
	}
	if len(sent.Requested) != 1 {
		t.Errorf("requested %v", sent.Requested)
	}
	if a, b := w.svm.Balance(t, w.aliceATA), w.svm.Balance(t, w.bobATA); a != 950_000 || b != 50_000 {
		t.Fatalf("balances alice %d bob %d, want 950000 and 50000", a, b)
	}
	_, reqs, err := bob.Conversations(ctx)
	if err != nil || len(reqs) != 1 {
		t.Fatalf("bob's requests: %v, %v", reqs, err)
	}

	// Replays, over raw HTTP with alice's session: the same paid stamp on
	// a new envelope (its memo binds the first), and a fresh payment for
	// an envelope then sent twice.
	atok := token(t, w.relay.URL, w.relay.URL[len("http://"):], w.alice.w, alice.Device())
	seal := w.sealer(t, alice, bob, sent.Conversation)
	env1 := seal("second message")
	in1 := stamp.Input{Recipient: w.bob.addr(), Sender: w.alice.addr(), Message: env1.Hash()}
	req1 := stamp.Requirements(in1, &stamp.Price{Amount: "50000", Asset: w.mint.String(), Network: x402.SolanaLocal}, w.feePayer)
	p1, err := w.payer(w.alice, 100_000).Pay(ctx, req1, nil)
	if err != nil {
		t.Fatal(err)
	}
	st1, err := stamp.NewPayment(p1)
	if err != nil {
		t.Fatal(err)
	}
	status, msg, body := call(t, "POST", w.relay.URL+relayapi.PathMessages, atok, marshal(relayapi.SendRequest{Envelope: marshal(env1), Stamps: map[string]stamp.Stamp{w.bob.addr().String(): *st1}}))
	if status != 201 {
		t.Fatalf("paid send: %d %s %s", status, msg, body)
	}
	env2 := seal("third message, same payment")
	status, msg, body = call(t, "POST", w.relay.URL+relayapi.PathMessages, atok, marshal(relayapi.SendRequest{Envelope: marshal(env2), Stamps: map[string]stamp.Stamp{w.bob.addr().String(): *st1}}))
	if status != 402 || reasonOf(body) != relayapi.ReasonStampRejected || !strings.Contains(msg, "does not match") {
		t.Errorf("a paid stamp reused for another message: %d %s (%s)", status, msg, reasonOf(body))
	}
	status, msg, body = call(t, "POST", w.relay.URL+relayapi.PathMessages, atok, marshal(relayapi.SendRequest{Envelope: marshal(env1), Stamps: map[string]stamp.Stamp{w.bob.addr().String(): *st1}}))
	if status != 402 || reasonOf(body) != relayapi.ReasonStampRejected || !strings.Contains(msg, x402.ReasonDuplicateSettlement) {
		t.Errorf("the same paid envelope again: %d %s (%s)", status, msg, reasonOf(body))
	}
	if a, b := w.svm.Balance(t, w.aliceATA), w.svm.Balance(t, w.bobATA); a != 900_000 || b != 100_000 {
		t.Fatalf("balances alice %d bob %d after the replays, want 900000 and 100000 (two payments)", a, b)
	}
}

// TestPaidStampRefusals: an underpayment, a payment to someone else, a
// price on a network the relay does not take, and a price on a relay
// that takes no payments are each refused with the check named.
func TestPaidStampRefusals(t *testing.T) {
	w := newPayWorld(t)
	ctx := context.Background()
	bob := w.client(t, w.bob, nil)
	price := &stamp.Price{Amount: "50000", Asset: w.mint.String(), Network: x402.SolanaLocal}
	if err := bob.SetPrice(ctx, &stamp.Price{Amount: "5", Asset: w.mint.String(), Network: x402.SolanaDevnet}); reason(err) != relayapi.ReasonBadPrice {
		t.Errorf("price on another network: %v", err)
	}
	if err := bob.SetPrice(ctx, &stamp.Price{Amount: "0", Asset: w.mint.String(), Network: x402.SolanaLocal}); reason(err) != relayapi.ReasonBadPrice {
		t.Errorf("zero price: %v", err)
	}
	// Every settlement costs the facilitator's fee payer a fee: prices
	// only in the relay's assets, and not below its minimum.
	if err := bob.SetPrice(ctx, &stamp.Price{Amount: "999", Asset: w.mint.String(), Network: x402.SolanaLocal}); reason(err) != relayapi.ReasonBadPrice {
		t.Errorf("price under the minimum: %v", err)
	}
	worthless, _ := w.svm.NewMint(t, 6)
	if err := bob.SetPrice(ctx, &stamp.Price{Amount: "5000", Asset: worthless.String(), Network: x402.SolanaLocal}); reason(err) != relayapi.ReasonBadPrice {
		t.Errorf("price in an asset the relay does not take: %v", err)
	}
	if err := bob.SetPrice(ctx, price); err != nil {
		t.Fatal(err)
	}
	// A payer whose limit is under bob's price does not pay.
	alice := w.client(t, w.alice, w.payer(w.alice, 49_999))
	if _, err := alice.SendDM(ctx, w.bob.addr(), "too cheap"); !errors.Is(err, x402pay.ErrLimit) {
		t.Errorf("over the payer's limit: %v", err)
	}
	alice = w.client(t, w.alice, nil)
	atok := token(t, w.relay.URL, w.relay.URL[len("http://"):], w.alice.w, alice.Device())
	seal := w.sealer(t, alice, bob, envelope.DMID(w.alice.addr(), w.bob.addr()))
	for name, mutate := range map[string]func(*x402.PaymentRequirements){
		"underpaid":      func(r *x402.PaymentRequirements) { r.Amount = "49999" },
		"paid to alice":  func(r *x402.PaymentRequirements) { r.PayTo = w.alice.addr().String() },
		"memo not bound": func(r *x402.PaymentRequirements) { r.Extra.Memo = "chatmcp-stamp:other" },
	} {
		env := seal(name)
		in := stamp.Input{Recipient: w.bob.addr(), Sender: w.alice.addr(), Message: env.Hash()}
		req := stamp.Requirements(in, price, w.feePayer)
		mutate(req)
		p, err := w.payer(w.alice, 100_000).Pay(ctx, req, nil)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := stamp.NewPayment(p)
		status, msg, body := call(t, "POST", w.relay.URL+relayapi.PathMessages, atok, marshal(relayapi.SendRequest{Envelope: marshal(env), Stamps: map[string]stamp.Stamp{w.bob.addr().String(): *st}}))
		if status != 402 || reasonOf(body) != relayapi.ReasonStampRejected || !strings.Contains(msg, "does not match") {
			t.Errorf("%s: %d %s (%s)", name, status, msg, reasonOf(body))
		}
	}
	// A paid stamp for someone who is not in the conversation (carol, who
	// set a price) is never settled, even beside a good one for bob.
	carol := newPerson(t)
	carolATA := w.svm.CreateATA(t, walletKey(carol), w.mint)
	cc := w.client(t, carol, nil)
	if err := cc.SetPrice(ctx, price); err != nil {
		t.Fatal(err)
	}
	env := seal("with a stamp for carol")
	stamps := map[string]stamp.Stamp{}
	for _, who := range []*person{w.bob, carol} {
		in := stamp.Input{Recipient: who.addr(), Sender: w.alice.addr(), Message: env.Hash()}
		p, err := w.payer(w.alice, 100_000).Pay(ctx, stamp.Requirements(in, price, w.feePayer), nil)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := stamp.NewPayment(p)
		stamps[who.addr().String()] = *st
	}
	if status, msg, _ := call(t, "POST", w.relay.URL+relayapi.PathMessages, atok, marshal(relayapi.SendRequest{Envelope: marshal(env), Stamps: stamps})); status != 201 {
		t.Fatalf("send with stamps for bob and carol: %d %s", status, msg)
	}
	if got := w.svm.Balance(t, carolATA); got != 0 {
		t.Errorf("carol was paid %d for a message she is not a recipient of", got)
	}
	if a := w.svm.Balance(t, w.aliceATA); a != 950_000 {
		t.Errorf("alice holds %d after one accepted payment, want 950000", a)
	}
	// A relay without a facilitator refuses prices.
	plain := relaytest.Start(t, storetest.SQLite(t), relay.Options{})
	c, err := chat.New(&chat.Options{Relay: plain.URL, Wallet: w.bob.w, Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetPrice(ctx, price); reason(err) != relayapi.ReasonNoPayments {
		t.Errorf("price on a relay without payments: %v", err)
	}
}

func reason(err error) string {
	var ae *chat.APIError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ""
}

// sealer seals envelopes from alice's device to bob's in conversation id,
// for sends over raw HTTP.
func (w *payWorld) sealer(t *testing.T, alice, bob *chat.Client, id string) func(text string) *envelope.Envelope {
	conv, err := alice.Membership(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return func(text string) *envelope.Envelope {
		e, err := envelope.Seal(rand.Reader, alice.Device(), conv, []envelope.DeviceCert{bob.Device().Cert}, []byte(text), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
}
