package cli

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/wallet"
)

// runDev runs `chatmcp dev args...` until its banner is printed and returns
// the output and a stop function.
func runDev(t *testing.T, args ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb devOutput
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"dev", "--dir", t.TempDir(), "--listen", "127.0.0.1:0"}, args...), &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	}()
	deadline := time.After(90 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops everything") {
		select {
		case code := <-done:
			cancel()
			t.Fatalf("dev exited %d early: %s", code, errb.String())
		case <-deadline:
			cancel()
			t.Fatalf("no instructions after 90s: %s", errb.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop := func() {
		cancel()
		if code := <-done; code != ExitOK {
			t.Errorf("dev exit %d: %s", code, errb.String())
		}
	}
	return out.String(), stop
}

// TestDevModel: `chatmcp dev --model URL` also starts an assistant against
// that OpenAI-compatible endpoint (here a scripted test server, not a
// model) whose device publishes evidence that the printed policy accepts,
// binding its configuration (this model URL, unattested on loopback).
func TestDevModel(t *testing.T) {
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"hi"}}]}`)
	}))
	defer model.Close()
	out, stop := runDev(t, "--model", model.URL+"/v1", "--model-name", "scripted")
	defer stop()
	m := regexp.MustCompile(`\nAssistant "assistant" \(chatmcp-agent, SIMULATED TEE\) at (\S+)\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no assistant in the banner:\n%s", out)
	}
	relay := regexp.MustCompile(`\n  relay +(http://127\.0\.0\.1:\d+) `).FindStringSubmatch(out)
	policyFile := regexp.MustCompile(`--agent ` + regexp.QuoteMeta(m[1]) + ` --policy (\S+) `).FindStringSubmatch(out)
	if relay == nil || policyFile == nil {
		t.Fatalf("banner lacks the relay or the agent policy:\n%s", out)
	}
	addr, err := wallet.ParseAddress(m[1])
	if err != nil {
		t.Fatal(err)
	}
	policy, err := attest.LoadPolicy(policyFile[1])
	if err != nil {
		t.Fatal(err)
	}
	w, _ := wallet.Generate(nil)
	c, err := chat.New(&chat.Options{Relay: relay[1], Wallet: w, Home: t.TempDir(), AgentPolicy: policy})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(context.Background()); err != nil {
		t.Fatal(err)
	}
	devs, err := c.InspectAgent(context.Background(), addr, policy)
	if err != nil || len(devs) != 1 {
		t.Fatalf("inspecting the assistant: %v", err)
	}
	if cfg := devs[0].Evidence.Config; cfg.Model.URL != model.URL+"/v1" || cfg.Model.Model != "scripted" || cfg.Model.Attested {
		t.Errorf("attested configuration %+v", cfg.Model)
	}
}

// TestDevWithoutModel: without --model, dev says how to add an assistant.
func TestDevWithoutModel(t *testing.T) {
	out, stop := runDev(t)
	defer stop()
	if !strings.Contains(out, "No assistant: add one with --model URL") {
		t.Errorf("banner does not say how to add an assistant:\n%s", out)
	}
}
