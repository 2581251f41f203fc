// Package opstest is for tests of a daemon's ops listener: it starts a
// daemon's Main and reads the URLs it logs, fetches /healthz, /readyz and
// /metrics, and reads values out of the text exposition.
package opstest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Get fetches url and returns the status code and body; a transport error
// fails the test.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Metrics fetches opsURL/metrics and returns the exposition; a status
// other than 200 fails the test.
func Metrics(t testing.TB, opsURL string) string {
	t.Helper()
	code, exp := Get(t, opsURL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	return exp
}

// Ready reports an error unless opsURL/readyz answers 200 and lists each
// of checks as passed ("[+]store ok").
func Ready(t testing.TB, opsURL string, checks ...string) {
	t.Helper()
	code, body := Get(t, opsURL+"/readyz")
	if code != http.StatusOK {
		t.Errorf("/readyz = %d %q, want 200", code, body)
	}
	for _, c := range checks {
		if !strings.Contains(body, "[+]"+c+" ok") {
			t.Errorf("/readyz lacks passed check %q: %q", c, body)
		}
	}
}

// Value returns the value of series (name plus labels exactly as exposed)
// in a text exposition, or -1 if the series is not there.
func Value(exp, series string) float64 {
	for _, l := range strings.Split(exp, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// AtLeastOne reports an error for each series whose value in exp is below 1.
func AtLeastOne(t testing.TB, exp string, series ...string) {
	t.Helper()
	for _, s := range series {
		if v := Value(exp, s); v < 1 {
			t.Errorf("%s = %v, want at least 1", s, v)
		}
	}
}

// Absent reports an error if any of secrets (canaries, tokens, addresses)
// appears in exp. The error names the secret by position only, so the test
// log does not carry it either.
func Absent(t testing.TB, exp string, secrets ...string) {
	t.Helper()
	for i, s := range secrets {
		if s != "" && strings.Contains(exp, s) {
			t.Errorf("secret %d of %d (a canary, token or address) appears in the metrics exposition", i+1, len(secrets))
		}
	}
}

// Canary returns a fresh random marker to plant in traffic and look for
// where it must not appear.
func Canary() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "canary" + hex.EncodeToString(b)
}

// WaitValue polls opsURL/metrics until series has the value want, and
// fails the test after 10 s. It is the readiness signal for state that a
// gauge shows (a live watcher, a pending approval).
func WaitValue(t testing.TB, opsURL, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, exp := Get(t, opsURL+"/metrics")
		if Value(exp, series) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %v", series, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Daemon is a daemon's Main running in a goroutine with its log on a pipe.
type Daemon struct {
	done  chan int
	lines map[string]chan string
}

// Log-line prefixes after which a daemon logs its URLs.
const (
	MetricsOn   = "metrics on "
	ListeningOn = "listening on "
)

// Start runs main with a pipe as its log writer and watches the log for
// the lines that name the ops URL (MetricsOn) and the service URL
// (ListeningOn).
func Start(main func(log io.Writer) int) *Daemon {
	d := &Daemon{done: make(chan int, 1), lines: map[string]chan string{MetricsOn: make(chan string, 1), ListeningOn: make(chan string, 1)}}
	pr, pw := io.Pipe()
	go func() {
		d.done <- main(pw)
		pw.Close()
	}()
	go func() {
		re := regexp.MustCompile(`(metrics on |listening on )(http://\S+)`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case d.lines[m[1]] <- m[2]:
				default:
				}
			}
		}
	}()
	return d
}

// URL waits up to 30 s for the line starting with prefix (MetricsOn or
// ListeningOn) and returns the URL on it; Main exiting first fails the test.
func (d *Daemon) URL(t testing.TB, prefix string) string {
	t.Helper()
	select {
	case u := <-d.lines[prefix]:
		return u
	case code := <-d.done:
		t.Fatalf("Main exited with %d before %q", code, prefix)
	case <-time.After(30 * time.Second):
		t.Fatalf("no %q line", prefix)
	}
	return ""
}

// Exit waits for Main to return and returns its exit code.
func (d *Daemon) Exit() int { return <-d.done }
