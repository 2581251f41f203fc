package daemon

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestMainFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"help lists only the daemon's flags", []string{"--help"}, 0, "-listen"},
		{"unknown flag", []string{"--nope"}, 1, "flag provided but not defined"},
		{"stray argument", []string{"--data", t.TempDir(), "extra"}, 1, `chatmcp-relay: error: unexpected argument "extra"`},
		{"no store", []string{"--dev"}, 1, "--data DIR (or --db DSN) is required"},
		{"no TLS files", []string{"--data", t.TempDir()}, 1, "--tls-cert and --tls-key are required"},
		{"dev off loopback", []string{"--dev", "--data", t.TempDir(), "--listen", "0.0.0.0:0"}, 1, "only on a loopback address"},
		{"facilitator without assets", []string{"--dev", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--facilitator", "http://127.0.0.1:1"}, 1, "--facilitator needs --payment-assets"},
		{"facilitator unreachable", []string{"--dev", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--facilitator", "http://127.0.0.1:1", "--payment-assets", "So11111111111111111111111111111111111111112"}, 1, "--facilitator: facilitator /supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := Main(context.Background(), tt.args, &stderr); code != tt.wantCode {
				t.Fatalf("Main(%q) = %d, want %d; stderr: %s", tt.args, code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("stderr = %q, want it to contain %q", stderr.String(), tt.wantErr)
			}
		})
	}
}
