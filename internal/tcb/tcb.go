// Package tcb records the trusted computing base rules of DESIGN.md: which
// packages each daemon may link. Its tests check the rules against the real
// import graph, in the spirit of tailscale's depaware.
package tcb

// Rule forbids a root package from linking any package under the listed
// prefixes (module-relative).
type Rule struct {
	Root      string
	Forbidden []string
	Why       string
}

// Rules are the import-graph invariants of the project.
func Rules() []Rule {
	return []Rule{
		{Root: "cmd/chatmcp-kbs", Forbidden: []string{"gateway", "relay", "chat", "wallet"},
			Why: "the KBS enclave image holds every secret: it links no gateway, relay or chat code"},
		{Root: "cmd/chatmcp-gateway", Forbidden: []string{"relay", "chat", "wallet"},
			Why: "the gateway enclave image links no relay or chat code"},
		{Root: "cmd/chatmcp-relay", Forbidden: []string{"kbs", "gateway"},
			Why: "the relay is untrusted: it links no KBS or gateway code"},
		{Root: "attest", Forbidden: []string{"kbs", "gateway", "relay", "chat", "store"},
			Why: "verifiers know no server"},
		{Root: "store", Forbidden: []string{"kbs", "gateway", "relay", "chat", "attest"},
			Why: "storage knows no server"},
		{Root: "internal/ops", Forbidden: []string{"kbs", "gateway", "relay", "chat", "attest", "audit", "store", "captoken", "wallet"},
			Why: "every daemon links the ops package (metrics, readiness), the untrusted relay too: it knows no domain package"},
	}
}
