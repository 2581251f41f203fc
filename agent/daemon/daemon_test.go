package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMainErrors(t *testing.T) {
	dir := t.TempDir()
	simPolicy := filepath.Join(dir, "sim.yaml")
	os.WriteFile(simPolicy, []byte("allow: [sim]\n"), 0o600)
	cfg := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfg, []byte("name: a\ndata: d\nrelay: http://127.0.0.1:1\nkbs: http://127.0.0.1:1\nwallet: {secret: w}\nmodel: {url: 'http://127.0.0.1:1/v1', model: m}\ngateway: {url: 'https://127.0.0.1:1', policy: sim.yaml}\n"), 0o600)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 1, "--config FILE is required"},
		{[]string{"--config", cfg, "extra"}, 1, `unexpected argument "extra"`},
		{[]string{"--bogus"}, 2, "flag provided but not defined"},
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, 1, "reading config"},
		// Without --dev, a policy that accepts simulated evidence is refused
		// before anything is fetched or published.
		{[]string{"--config", cfg}, 1, "gateway.policy allows the simulated TEE (sim): only with --dev"},
		// With --dev it is accepted; the KBS is unreachable, which the error names.
		{[]string{"--config", cfg, "--dev"}, 1, `fetching the wallet "w" from the KBS`},
	} {
		var stderr bytes.Buffer
		code := Main(context.Background(), c.args, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr.String(), c.code, c.want)
		}
		if slices.Contains(c.args, "--dev") != strings.Contains(stderr.String(), "SIMULATED TEE") {
			t.Errorf("%v: stderr %q: --dev must say it accepts simulated evidence, and only --dev", c.args, stderr.String())
		}
	}
}
