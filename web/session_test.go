package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/web"
)

// testClock is an injectable clock a test moves forward.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestSessionExpiry checks the idle timeout (12 h without a request) and
// the absolute lifetime (7 days however active) against a real server
// with an injected clock: an expired cookie gets 401 and the page asking
// for the launch link, and stays expired.
func TestSessionExpiry(t *testing.T) {
	relayURL := startRelay(t)
	for _, tc := range []struct {
		name string
		// steps are the gaps between requests that still succeed; expire is
		// the last gap, after which the session is gone.
		steps  []time.Duration
		expire time.Duration
	}{
		{"idle", []time.Duration{time.Hour, 11*time.Hour + 59*time.Minute}, 12 * time.Hour},
		{"lifetime", []time.Duration{11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour, 11 * time.Hour}, 3 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &testClock{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
			launch, _ := startWeb(t, &web.Options{Relay: relayURL, Home: t.TempDir(), Now: clk.Now})
			u, _ := url.Parse(launch)
			base := "http://" + u.Host
			c := browserless(t)
			if code, _, _ := get(t, c, launch); code != http.StatusSeeOther {
				t.Fatalf("launch: %d, want 303", code)
			}
			for i, d := range tc.steps {
				clk.advance(d)
				if code, _, _ := get(t, c, base+"/signin"); code != http.StatusOK {
					t.Fatalf("request %d after %v: %d, want 200 (session still valid)", i, d, code)
				}
			}
			clk.advance(tc.expire)
			code, body, _ := get(t, c, base+"/signin")
			if code != http.StatusUnauthorized || !strings.Contains(body, "Open the link chatmcp web printed") {
				t.Fatalf("expired session: %d, want 401 and the page asking for the link", code)
			}
			// Going back in time does not revive it: it was dropped.
			clk.advance(-tc.expire)
			if code, _, _ := get(t, c, base+"/signin"); code != http.StatusUnauthorized {
				t.Fatalf("expired session after the clock went back: %d, want 401", code)
			}
		})
	}
}
