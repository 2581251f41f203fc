// Command relay benchmarks the ChatMCP relay on loopback: messages per
// second accepted and durably stored, and send-to-receive latency with many
// connected WebSocket watchers, on SQLite and PostgreSQL. It starts the
// relay in-process on 127.0.0.1 and runs bounded workloads:
//
//	go run ./bench/relay [-backend sqlite|postgres|both] [-watchers 1000] [-messages 300]
//
// PostgreSQL needs -db or CHATMCP_TEST_POSTGRES_DSN (an admin DSN; a
// scratch database is created and dropped).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/relay"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/wallet"
)

func main() {
	backend := flag.String("backend", "both", "sqlite, postgres or both")
	dsn := flag.String("db", os.Getenv("CHATMCP_TEST_POSTGRES_DSN"), "PostgreSQL admin DSN")
	watchers := flag.Int("watchers", 1000, "connected WebSocket watchers (bounded to 5000)")
	messages := flag.Int("messages", 300, "messages for the latency run (bounded to 10000)")
	senders := flag.Int("senders", 8, "concurrent senders for the throughput run")
	duration := flag.Duration("duration", 5*time.Second, "throughput run length (bounded to 1m)")
	flag.Parse()
	*watchers = min(*watchers, 5000)
	*messages = min(*messages, 10000)
	*duration = min(*duration, time.Minute)
	ctx := context.Background()
	fmt.Println("| store | accepted+stored msg/s | watchers | p50 send→receive | p99 send→receive |")
	fmt.Println("|---|---|---|---|---|")
	for _, b := range []string{"sqlite", "postgres"} {
		if *backend != "both" && *backend != b {
			continue
		}
		src, cleanup, err := database(ctx, b, *dsn)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", b, err)
			continue
		}
		res, err := run(ctx, src, *watchers, *messages, *senders, *duration)
		cleanup()
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", b, err)
			os.Exit(1)
		}
		fmt.Printf("| %s | %.0f | %d | %v | %v |\n", b, res.rate, *watchers, res.p50.Round(10*time.Microsecond), res.p99.Round(10*time.Microsecond))
	}
}

func database(ctx context.Context, backend, admin string) (string, func(), error) {
	if backend == "sqlite" {
		dir, err := os.MkdirTemp("", "relay-bench-")
		if err != nil {
			return "", nil, err
		}
		return filepath.Join(dir, "relay.db"), func() { os.RemoveAll(dir) }, nil
	}
	if admin == "" {
		return "", nil, fmt.Errorf("no PostgreSQL DSN (-db or CHATMCP_TEST_POSTGRES_DSN)")
	}
	adb, err := store.Open(ctx, admin)
	if err != nil {
		return "", nil, err
	}
	var b [6]byte
	rand.Read(b[:])
	name := "chatmcp_bench_" + hex.EncodeToString(b[:])
	if _, err := adb.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		adb.Close()
		return "", nil, err
	}
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	return u.String(), func() {
		adb.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		adb.Close()
	}, nil
}

type result struct {
	rate     float64
	p50, p99 time.Duration
}

func run(ctx context.Context, src string, nWatchers, nMessages, nSenders int, duration time.Duration) (*result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	db, err := store.Open(ctx, src)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv, err := relay.New(ctx, db, &relay.Options{Domain: ln.Addr().String()})
	if err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go srv.Run(ctx, ready)
	<-ready
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	home, _ := os.MkdirTemp("", "relay-bench-home-")
	defer os.RemoveAll(home)
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	newClient := func() (*chat.Client, error) {
		w, err := wallet.Generate(rand.Reader)
		if err != nil {
			return nil, err
		}
		return chat.New(&chat.Options{Relay: base, Wallet: w, Home: home, HTTPClient: &http.Client{Transport: transport, Timeout: time.Minute}})
	}

	// Throughput: pre-sealed envelopes posted by concurrent senders to one
	// recipient who allowed them; each 201 means committed to the store.
	recv, err := newClient()
	if err != nil {
		return nil, err
	}
	if err := recv.Login(ctx); err != nil {
		return nil, err
	}
	var rate float64
	{
		type sender struct {
			c     *chat.Client
			conv  *envelope.Conversation
			certs []envelope.DeviceCert
		}
		var ss []*sender
		for i := 0; i < nSenders; i++ {
			c, err := newClient()
			if err != nil {
				return nil, err
			}
			if err := recv.Allow(ctx, c.Address()); err != nil {
				return nil, err
			}
			if _, err := c.SendDM(ctx, recv.Address(), "hello"); err != nil {
				return nil, err
			}
			op := &envelope.Op{Conversation: envelope.DMID(c.Address(), recv.Address()), Kind: envelope.KindDM, Epoch: 1,
				Creator: c.Address(), Members: envelope.SortMembers([]wallet.Address{c.Address(), recv.Address()})}
			conv := &envelope.Conversation{ID: op.Conversation, Kind: op.Kind, Creator: op.Creator, Epoch: 1, Members: op.Members}
			ss = append(ss, &sender{c: c, conv: conv, certs: []envelope.DeviceCert{recv.Device().Cert}})
		}
		var n atomic.Int64
		deadline := time.Now().Add(duration)
		var wg sync.WaitGroup
		var firstErr atomic.Value
		start := time.Now()
		for _, s := range ss {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					env, err := envelope.Seal(rand.Reader, s.c.Device(), s.conv, s.certs, []byte("benchmark message"), time.Now())
					if err != nil {
						firstErr.Store(err)
						return
					}
					if _, err := s.c.Post(ctx, env); err != nil {
						firstErr.Store(err)
						return
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		if e := firstErr.Load(); e != nil {
			return nil, e.(error)
		}
		rate = float64(n.Load()) / time.Since(start).Seconds()
	}

	// Latency: nWatchers users each hold a live WebSocket; one sender writes
	// to a rotating subset of them, one message at a time, and the time
	// from starting the send to the watcher's callback (verified and
	// decrypted) is recorded.
	sender, err := newClient()
	if err != nil {
		return nil, err
	}
	if err := sender.Login(ctx); err != nil {
		return nil, err
	}
	type watcher struct {
		c    *chat.Client
		got  chan time.Time
		conv string
	}
	ws := make([]*watcher, nWatchers)
	for i := range ws {
		c, err := newClient()
		if err != nil {
			return nil, err
		}
		if err := c.Login(ctx); err != nil {
			return nil, err
		}
		ws[i] = &watcher{c: c, got: make(chan time.Time, 4)}
	}
	const targets = 20
	for _, w := range ws[:targets] {
		if err := w.c.Allow(ctx, sender.Address()); err != nil {
			return nil, err
		}
		if _, err := sender.SendDM(ctx, w.c.Address(), "warm-up"); err != nil {
			return nil, err
		}
	}
	var connected sync.WaitGroup
	for _, w := range ws {
		connected.Add(1)
		go func() {
			first := true
			w.c.Watch(ctx, 0, func(m chat.Message) error {
				if first { // the warm-up message (or none) arrives first
					first = false
					connected.Done()
					if m.Text == "warm-up" {
						return nil
					}
				}
				if m.Err == "" && m.Text == "ping" {
					w.got <- time.Now()
				}
				return nil
			})
		}()
	}
	// Watchers with nothing stored receive nothing on connect, so there is
	// no signal that they are subscribed: give them time to dial.
	for range ws[targets:] {
		connected.Done()
	}
	connected.Wait()
	time.Sleep(2*time.Second + time.Duration(nWatchers)*2*time.Millisecond)
	var lat []time.Duration
	for i := 0; i < nMessages; i++ {
		w := ws[i%targets]
		start := time.Now()
		if _, err := sender.SendDM(ctx, w.c.Address(), "ping"); err != nil {
			return nil, err
		}
		select {
		case t := <-w.got:
			lat = append(lat, t.Sub(start))
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("message %d not received within 30s", i)
		}
	}
	slices.Sort(lat)
	return &result{rate: rate, p50: lat[len(lat)/2], p99: lat[len(lat)*99/100]}, nil
}
