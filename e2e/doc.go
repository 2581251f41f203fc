// Package e2e runs ChatMCP end to end: a real gateway and key broker
// (devstack, in this process), real MCP servers from npm as upstreams, the
// real chatmcp binary's connect command as the client's stdio server, and
// the real MCP inspector CLI as the client. It needs node and
// e2e/node_modules (`npm ci` in e2e/); without them every test skips.
package e2e
