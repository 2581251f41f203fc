// Package relaytest is for tests that need a real relay: it serves one over
// loopback HTTP, with its fan-out running, until the test ends.
package relaytest

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/store/storetest"
)

// Difficulty is the proof-of-work difficulty of test relays: cheap, but
// stamps are still minted and checked.
const Difficulty = 8

// Relay is a relay served for one test.
type Relay struct {
	URL string
	Srv *relay.Server
	DB  *store.DB
}

// Start serves a relay over db (a fresh SQLite store if nil) on a loopback
// listener, with opts.Domain set to the listener's address, and runs its
// fan-out. Cleanup stops both.
func Start(t testing.TB, db *store.DB, opts relay.Options) *Relay {
	t.Helper()
	if db == nil {
		db = storetest.SQLite(t)
	}
	ts := httptest.NewUnstartedServer(nil)
	opts.Domain = ts.Listener.Addr().String()
	srv, err := relay.New(context.Background(), db, &opts)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv
	ts.Start()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() { srv.Run(ctx, ready); close(done) }()
	<-ready
	t.Cleanup(func() { cancel(); <-done; ts.Close() })
	return &Relay{URL: ts.URL, Srv: srv, DB: db}
}
