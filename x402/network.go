package x402

import (
	"fmt"
	"strings"
)

// CAIP-2 ids of the Solana clusters (the first 32 characters of each
// cluster's genesis hash, base58), spec §11.1.
const (
	SolanaMainnet = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
	SolanaDevnet  = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
	SolanaTestnet = "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z"
	// SolanaLocal is ChatMCP's id for a local test runtime (litesvm, a
	// test validator): not a real cluster, refused by default configs.
	SolanaLocal = "solana:chatmcp-local-test"
)

// v1Networks maps x402 v1 network names to CAIP-2 ids (v1 payments are
// accepted on input only).
var v1Networks = map[string]string{
	"solana":         SolanaMainnet,
	"solana-devnet":  SolanaDevnet,
	"solana-testnet": SolanaTestnet,
}

// Network is a parsed CAIP-2 chain id: namespace:reference.
type Network struct {
	Namespace, Reference string
}

func (n Network) String() string { return n.Namespace + ":" + n.Reference }

// IsSolana reports whether n is in the solana namespace.
func (n Network) IsSolana() bool { return n.Namespace == "solana" }

// ParseNetwork parses a CAIP-2 chain id: a namespace of 3-8 characters
// [-a-z0-9] and a reference of 1-32 characters [-_a-zA-Z0-9].
func ParseNetwork(s string) (Network, error) {
	ns, ref, ok := strings.Cut(s, ":")
	if !ok {
		return Network{}, fmt.Errorf("network %q is not a CAIP-2 id (namespace:reference)", truncate(s))
	}
	if len(ns) < 3 || len(ns) > 8 || !allIn(ns, "-abcdefghijklmnopqrstuvwxyz0123456789") {
		return Network{}, fmt.Errorf("network %q: namespace must be 3-8 characters of [-a-z0-9]", truncate(s))
	}
	if len(ref) < 1 || len(ref) > 32 || !allIn(ref, "-_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") {
		return Network{}, fmt.Errorf("network %q: reference must be 1-32 characters of [-_a-zA-Z0-9]", truncate(s))
	}
	return Network{ns, ref}, nil
}

// NetworkFromV1 maps a v1 network name ("solana-devnet") to its CAIP-2 id;
// a CAIP-2 id is returned as it is.
func NetworkFromV1(name string) (string, error) {
	if id, ok := v1Networks[name]; ok {
		return id, nil
	}
	if _, err := ParseNetwork(name); err == nil {
		return name, nil
	}
	return "", fmt.Errorf("unknown v1 network %q", truncate(name))
}

func allIn(s, set string) bool {
	for _, c := range s {
		if !strings.ContainsRune(set, c) {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
