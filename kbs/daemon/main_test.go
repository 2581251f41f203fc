package daemon

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/attest/devices"
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
		{"stray argument", []string{"--data", t.TempDir(), "extra"}, 1, `unexpected argument "extra"`},
		// This machine has no TEE device: without --dev or TLS files the
		// KBS refuses to serve rather than serve unattested.
		{"no TEE and no TLS files", []string{"--data", t.TempDir()}, 1, "no TEE device found"},
		{"unknown TEE", []string{"--data", t.TempDir(), "--tee", "sgx"}, 1, `unknown TEE type "sgx"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "no TEE and no TLS files" {
				if _, err := devices.Detect(nil); err == nil {
					t.Skip("this machine has a TEE device")
				}
			}
			var stderr bytes.Buffer
			code := Main(context.Background(), tt.args, &stderr)
			if code != tt.wantCode {
				t.Fatalf("Main(%q) = %d, want %d; stderr: %s", tt.args, code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("stderr = %q, want it to contain %q", stderr.String(), tt.wantErr)
			}
			if strings.Contains(stderr.String(), "workaround_kds_productname") {
				t.Fatalf("a library's global flag leaked into the daemon's flags: %s", stderr.String())
			}
		})
	}
}
