// Command agent benchmarks the ChatMCP assistant's overhead per turn: the
// time from a member's message being sent to the agent's signed reply being
// received, against the time the model endpoint itself spent on that turn,
// measured in the same run by a timing proxy in front of the model. Turns
// without a tool call and with one (through the attested gateway to the
// notes upstream) are measured separately. Everything runs in-process on
// loopback (devstack: KBS, gateway, relay; the agent daemon; the INSECURE
// simulated TEE) against the TINY TEST MODEL of ../shared/llm (node), or
// any OpenAI-compatible endpoint given with -model:
//
//	go run ./bench/agent [-turns 15] [-model URL -model-name NAME]
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/captoken"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/devstack"
	"github.com/chatmcp/chatmcp/gwclient"
	"github.com/chatmcp/chatmcp/internal/tinyllm"
	"github.com/chatmcp/chatmcp/wallet"
)

func main() {
	turns := flag.Int("turns", 15, "turns per kind (bounded to 200)")
	modelURL := flag.String("model", "", "OpenAI-compatible base URL (default: start the tiny test model)")
	modelName := flag.String("model-name", "tiny-chat", "model name")
	flag.Parse()
	*turns = min(max(*turns, 1), 200)
	if err := run(*turns, *modelURL, *modelName); err != nil {
		fmt.Fprintln(os.Stderr, "bench/agent:", err)
		os.Exit(1)
	}
}

// proxy times every request to the model.
type proxy struct {
	mu    sync.Mutex
	spent time.Duration
	calls int
}

func (p *proxy) take() (time.Duration, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, n := p.spent, p.calls
	p.spent, p.calls = 0, 0
	return d, n
}

func run(turns int, modelURL, modelName string) error {
	ctx := context.Background()
	if modelURL == "" {
		u, stop, err := tinyllm.Run(ctx)
		if err != nil {
			return err
		}
		defer stop()
		modelURL = u
	}
	target, err := url.Parse(modelURL)
	if err != nil {
		return err
	}
	p := &proxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rp.ServeHTTP(w, r)
		p.mu.Lock()
		p.spent += time.Since(start)
		p.calls++
		p.mu.Unlock()
	}))
	defer ps.Close()

	dir, err := os.MkdirTemp("", "agent-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	aw, err := wallet.Generate(rand.Reader)
	if err != nil {
		return err
	}
	st, err := devstack.Start(ctx, &devstack.Options{Dir: dir, Secrets: map[string][]byte{devstack.AgentSecret: aw.MarshalKeypair()}})
	if err != nil {
		return err
	}
	defer st.Close()
	ag, err := st.StartAgent(ctx, &devstack.AgentOptions{ModelURL: ps.URL + target.Path, Model: modelName,
		Limits: agentapi.Limits{TurnsPerMinute: agentapi.MaxTurnsPerMinute, ContextMessages: 1}})
	if err != nil {
		return err
	}
	defer ag.Stop()
	policy, err := attest.LoadPolicy(st.PolicyFile)
	if err != nil {
		return err
	}
	alice, err := wallet.Generate(rand.Reader)
	if err != nil {
		return err
	}
	copts := &chat.Options{Relay: st.RelayURL, Wallet: alice, Home: filepath.Join(dir, "alice"), AgentPolicy: policy}
	sender, err := chat.New(copts)
	if err != nil {
		return err
	}
	if err := sender.Login(ctx); err != nil {
		return err
	}
	watcher, err := chat.New(copts)
	if err != nil {
		return err
	}
	replies := make(chan time.Time, 16)
	go watcher.Watch(ctx, 0, func(m chat.Message) error {
		if am, err := agentapi.ParseMessage(m.Text); err == nil && am.Kind == agentapi.KindReply {
			replies <- time.Now()
		}
		return nil
	})
	conv, err := sender.CreateGroup(ctx, []wallet.Address{ag.Address})
	if err != nil {
		return err
	}
	m, err := st.Admin.Mint(ctx, gwclient.MintRequest{Tools: []string{"notes_*"}, TTL: "1h", Subject: "alice"})
	if err != nil {
		return err
	}
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	tok, err := captoken.Attenuate(m.Token, captoken.Caveat{Tools: []string{"notes_list_notes"}, Expires: exp})
	if err != nil {
		return err
	}
	send := func(msg *agentapi.Message) error {
		pt, err := agentapi.Encode(msg)
		if err != nil {
			return err
		}
		_, err = sender.Send(ctx, conv, pt)
		return err
	}
	if err := send(&agentapi.Message{Kind: agentapi.KindGrant, Grant: &agentapi.Grant{Token: tok, Approver: alice.Address(), Agent: ag.Address,
		Tools: []string{"notes_list_notes"}, Expires: exp, Conversation: conv}}); err != nil {
		return err
	}
	turn := func(text string) (total, model time.Duration, calls int, err error) {
		p.take()
		start := time.Now()
		if err := send(&agentapi.Message{Kind: agentapi.KindText, Text: "@assistant " + text}); err != nil {
			return 0, 0, 0, err
		}
		select {
		case at := <-replies:
			model, calls = p.take()
			return at.Sub(start), model, calls, nil
		case <-time.After(2 * time.Minute):
			return 0, 0, 0, fmt.Errorf("no reply to %q", text)
		}
	}
	// Warm up: sessions, caches, the agent's consent.
	for _, w := range []string{"hello", "please list my notes"} {
		if _, _, _, err := turn(w); err != nil {
			return err
		}
	}
	fmt.Println("| turn | turns counted | model calls/turn | median model time | median message→reply | ratio (median of per-turn ratios) | median agent overhead |")
	fmt.Println("|---|---|---|---|---|---|---|")
	// A turn counts only when the model did what the kind names (the tiny
	// model sometimes answers "list my notes" without the tool, or calls it
	// for "hello"): 1 model call without a tool, 2 with one.
	for _, k := range []struct {
		name, text string
		calls      int
	}{{"no tool call", "hello", 1}, {"one tool call (notes_list_notes)", "please list my notes", 2}} {
		var totals, models, overheads []time.Duration
		var ratios []float64
		tries := 0
		for len(totals) < turns && tries < 4*turns {
			tries++
			total, model, n, err := turn(k.text)
			if err != nil {
				return err
			}
			if n != k.calls {
				continue
			}
			totals, models, overheads = append(totals, total), append(models, model), append(overheads, total-model)
			ratios = append(ratios, float64(total)/float64(model))
		}
		if len(totals) == 0 {
			return fmt.Errorf("%s: no turn made %d model calls", k.name, k.calls)
		}
		fmt.Printf("| %s | %d of %d | %d | %v | %v | %.2f | %v |\n", k.name, len(totals), tries, k.calls,
			median(models).Round(100*time.Microsecond), median(totals).Round(100*time.Microsecond), medianF(ratios), median(overheads).Round(100*time.Microsecond))
	}
	return nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianF(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	return s[len(s)/2]
}
