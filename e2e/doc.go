// Package e2e runs ChatMCP end to end: a real gateway and key broker
// (devstack, in this process), real MCP servers from npm as upstreams, the
// real chatmcp binary's connect command as the client's stdio server, and
// the real MCP inspector CLI as the client. It needs node and npm: TestMain
// installs the npm packages from the committed package-lock.json (`npm ci`,
// once, under a lock shared with other test binaries) when e2e/node_modules
// is missing or older than the lock file. Nothing skips.
package e2e
