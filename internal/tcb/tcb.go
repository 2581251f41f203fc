// Package tcb records the trusted computing base rules of DESIGN.md: which
// packages each daemon may link. Its tests check the rules against the real
// import graph and, in the spirit of tailscale's depaware, compare each
// daemon's linked packages with a committed list (testdata/<daemon>.deps,
// refreshed with `go test ./internal/tcb -update`), so a new package in an
// enclave image is a reviewed diff, never an accident.
package tcb

import "path"

// Daemons are the binaries whose linked packages of this module are listed
// in testdata/<base name>.deps.
func Daemons() []string {
	return []string{"cmd/chatmcp-kbs", "cmd/chatmcp-gateway", "cmd/chatmcp-relay", "cmd/chatmcp-agent", "cmd/chatmcp-signer", "cmd/chatmcp-facilitator"}
}

// DepsFile is the committed list of root's linked packages, relative to
// this package's directory.
func DepsFile(root string) string { return "testdata/" + path.Base(root) + ".deps" }

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
		{Root: "cmd/chatmcp-kbs", Forbidden: []string{"kbsclient", "gwclient", "mcpbridge", "captoken", "cmd/chatmcp/cli"},
			Why: "the KBS serves its API (kbsapi) and is nobody's client"},
		{Root: "cmd/chatmcp-gateway", Forbidden: []string{"relay", "chat"},
			Why: "the gateway enclave image links no relay or chat code (wallet and envelope only to verify approval statements, agentapi)"},
		{Root: "cmd/chatmcp-gateway", Forbidden: []string{"kbs"},
			Why: "the gateway links only the client side of the KBS (kbsclient, kbsapi), never its server, storage or daemon"},
		{Root: "cmd/chatmcp-gateway", Forbidden: []string{"gwclient", "mcpbridge", "cmd/chatmcp/cli"},
			Why: "the gateway links no client of itself and no CLI code"},
		{Root: "cmd/chatmcp-relay", Forbidden: []string{"kbs", "kbsapi", "kbsclient", "gateway", "gatewayapi", "gwclient"},
			Why: "the relay is untrusted: it links no KBS or gateway code"},
		{Root: "cmd/chatmcp-relay", Forbidden: []string{"chat", "cmd/chatmcp/cli"},
			Why: "the relay links no client code: the wire formats both sides own are relayapi, envelope and stamp"},
		{Root: "cmd/chatmcp-agent", Forbidden: []string{"kbs", "gateway", "relay", "store", "audit", "devstack", "examples"},
			Why: "the agent enclave image links clients only (chat, an MCP client, kbsclient, ratls): no KBS, gateway or relay server, no storage"},
		{Root: "cmd/chatmcp-agent", Forbidden: []string{"gwclient", "mcpbridge", "cmd/chatmcp/cli", "web", "signer", "facilitator"},
			Why: "the agent links no admin client, desktop bridge, CLI, web app or payment signer (it pays through signerclient and x402pay, clients of the signer)"},
		{Root: "agentapi", Forbidden: []string{"chat", "agent", "kbs", "gateway", "relay", "store"},
			Why: "the agent protocol is shared by the agent, members' clients and the gateway: it links none of them"},
		{Root: "cmd/chatmcp-signer", Forbidden: []string{"gateway", "gatewayapi", "relay", "relayapi", "chat", "agent", "web", "devstack", "examples"},
			Why: "the signer enclave image holds payment keys: it links no gateway, relay, chat or agent code (agentapi, the approval statements' format, is a protocol package)"},
		{Root: "cmd/chatmcp-signer", Forbidden: []string{"kbs", "facilitator", "gwclient", "signerclient", "mcpbridge", "cmd/chatmcp/cli"},
			Why: "the signer links only the client side of the KBS (kbsclient, kbsapi), no facilitator that calls it, no client of itself and no CLI code"},
		{Root: "cmd/chatmcp-facilitator", Forbidden: []string{"gateway", "gatewayapi", "relay", "relayapi", "chat", "agent", "agentapi", "web", "kbs", "kbsclient", "devstack", "examples"},
			Why: "the facilitator holds a fee-payer key (or its signer's capability): it links no gateway, relay, chat, agent or KBS code"},
		{Root: "cmd/chatmcp-facilitator", Forbidden: []string{"signer/daemon", "gwclient", "mcpbridge", "cmd/chatmcp/cli"},
			Why: "the facilitator is a client of the signer at most, never the signer itself, and links no CLI"},
		{Root: "signerapi", Forbidden: []string{"signer", "kbs", "gateway", "relay", "chat", "store", "x402"},
			Why: "the signer's wire protocol is shared by the signer and its clients: it links none of them"},
		{Root: "attest", Forbidden: []string{"kbs", "gateway", "relay", "chat", "store"},
			Why: "verifiers know no server"},
		{Root: "store", Forbidden: []string{"kbs", "gateway", "relay", "chat", "attest"},
			Why: "storage knows no server"},
		{Root: "internal/ops", Forbidden: []string{"kbs", "gateway", "relay", "chat", "attest", "audit", "store", "captoken", "wallet"},
			Why: "every daemon links the ops package (metrics, readiness), the untrusted relay too: it knows no domain package"},
		{Root: "internal/daemon", Forbidden: []string{"kbs", "gateway", "relay", "chat", "attest", "audit", "store", "captoken", "wallet", "signer", "facilitator", "agent"},
			Why: "every daemon links the shared startup (flags, logger, ops server, --dev listener), the untrusted relay too: it knows no domain package"},
	}
}

// Violations are the packages of deps (module-relative) that r forbids.
func (r Rule) Violations(deps []string) []string {
	var out []string
	for _, dep := range deps {
		for _, f := range r.Forbidden {
			if dep == f || len(dep) > len(f) && dep[:len(f)+1] == f+"/" {
				out = append(out, dep)
				break
			}
		}
	}
	return out
}
