package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/chatmcp/chatmcp/attest/sim"
	"github.com/chatmcp/chatmcp/internal/testvectors"
	"github.com/chatmcp/chatmcp/ratls"
)

// vectorsDir returns ../shared/testvectors beside the repository root, or
// "" when it is absent.
func vectorsDir(t *testing.T) string {
	t.Helper()
	return testvectors.Root()
}

// TestAttestScripts runs testdata/attest/*.txtar. Scripts that need the real
// TEE evidence use the [vectors] condition and $VECTORS; they are skipped,
// saying so, when ../shared/testvectors is absent.
func TestAttestScripts(t *testing.T) {
	vectors := vectorsDir(t)
	if vectors == "" {
		t.Log("../shared/testvectors not found: scripts needing real TEE evidence are skipped")
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/attest",
		Setup: func(e *testscript.Env) error {
			e.Setenv("VECTORS", vectors)
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "vectors" {
				return vectors != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"ratls-server": cmdRATLSServer,
		},
	})
}

// cmdRATLSServer starts an RA-TLS server with simulated evidence on
// loopback for the rest of the script and sets $URL to its address.
// Measurement is 48 bytes of 0xab. With "expired", its certificate was made
// two days ago.
func cmdRATLSServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! ratls-server")
	}
	now := time.Now
	if len(args) == 1 && args[0] == "expired" {
		now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	}
	m := make([]byte, 48)
	for i := range m {
		m[i] = 0xab
	}
	a, err := sim.NewAttester(&sim.Options{Measurement: m, Now: now})
	ts.Check(err)
	iss := ratls.NewIssuer(a, &ratls.IssuerOptions{Now: now})
	mux := http.NewServeMux()
	mux.Handle(ratls.AttestationPath, ratls.AttestationHandler(a, iss.SPKI))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(tls.NewListener(ln, iss.ServerConfig()))
	ts.Defer(func() { srv.Shutdown(context.Background()) })
	ts.Setenv("URL", "https://"+ln.Addr().String())
}
