package cli

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/chatmcp/chatmcp/audit"
	"github.com/spf13/cobra"
)

// newAuditCmd builds `chatmcp audit`.
//
// Exit codes of `chatmcp audit verify`: 0 the log is intact, 2 it is not
// (the message names the first bad line), 1 usage or I/O error.
func newAuditCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify hash-chained audit logs (KBS, gateway)"}
	var keyHex, headStr string
	var open bool
	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check an audit log's hash chain and signed checkpoints",
		Long: `Verify reads a ChatMCP audit log (JSON Lines, one entry per line, each
carrying the SHA-256 of the line before, with checkpoints signed by the log's
Ed25519 key) and exits 0 when it is intact. Otherwise it exits 2 naming the
first bad line: an entry altered, removed, reordered or inserted, a torn or
cut final line, or a log that does not end with a signed checkpoint.

Without --key the key in the log's own header is trusted, which catches any
edit by someone without the key but not a log rewritten and re-signed under
a new key: pass the KBS's published audit key (DIR/audit.pub) with --key.`,
		Example: `  chatmcp audit verify /var/lib/chatmcp-kbs/audit.jsonl --key $(cat /var/lib/chatmcp-kbs/audit.pub)
  chatmcp audit verify gateway-audit.jsonl --open   # a log still being written`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts := &audit.VerifyOptions{AllowOpen: open}
			if keyHex != "" {
				k, err := hex.DecodeString(strings.TrimSpace(keyHex))
				if err != nil || len(k) != ed25519.PublicKeySize {
					return exitf(ExitUsage, "--key: want 64 hex digits (an Ed25519 public key)")
				}
				opts.Key = k
			}
			if headStr != "" {
				h, err := parseHead(headStr)
				if err != nil {
					return exitf(ExitUsage, "--head: %v", err)
				}
				opts.Head = h
			}
			f, err := os.Open(args[0])
			if err != nil {
				return exitf(ExitUsage, "%v", err)
			}
			defer f.Close()
			sum, err := audit.Inspect(f, opts)
			if err != nil {
				var le *audit.LineError
				if errors.As(err, &le) {
					return exitf(ExitInvalid, "%s: %v", args[0], err)
				}
				return exitf(ExitUsage, "%s: %v", args[0], err)
			}
			fmt.Fprintf(env.Stdout, "ok: %d lines, %d entries, %d checkpoints, %d notes; key %x; head %s\n",
				sum.Lines, sum.Entries, sum.Checkpoints, sum.Notes, []byte(sum.Key), sum.Head)
			if sum.Unsealed > 0 {
				fmt.Fprintf(env.Stderr, "chatmcp: warning: the last %d lines follow the last signed checkpoint\n", sum.Unsealed)
			}
			if opts.Key == nil {
				fmt.Fprintf(env.Stderr, "chatmcp: warning: no --key given; trusted the key in the log's own header\n")
			}
			return nil
		},
	}
	verify.Flags().StringVar(&keyHex, "key", "", "trusted Ed25519 public key of the log (hex)")
	verify.Flags().BoolVar(&open, "open", false, "accept entries after the last checkpoint (a log still being written)")
	verify.Flags().StringVar(&headStr, "head", "", "a head SEQ:HASH recorded earlier that the log must contain")
	cmd.AddCommand(verify)
	return cmd
}

func parseHead(s string) (*audit.Head, error) {
	seqStr, hashHex, ok := strings.Cut(s, ":")
	var h audit.Head
	if !ok {
		return nil, errors.New("want SEQ:HASH")
	}
	if _, err := fmt.Sscanf(seqStr, "%d", &h.Seq); err != nil {
		return nil, fmt.Errorf("seq: %w", err)
	}
	b, err := hex.DecodeString(hashHex)
	if err != nil || len(b) != len(h.Hash) {
		return nil, errors.New("hash: want 64 hex digits")
	}
	copy(h.Hash[:], b)
	return &h, nil
}
