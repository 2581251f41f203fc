#!/usr/bin/env bash
# Runs the official MCP conformance suite's server scenarios (npm
# @modelcontextprotocol/conformance 0.1.12 on Node 20 and 0.1.16 on the
# Node 22 of npm's node package) against go-sdk's reference server, directly
# and through chatmcp-gateway with the upstream un-prefixed, and fails when a
# scenario that passes directly fails through the gateway. It is the Go test
# e2e.TestConformance, which `go test ./...` and CI (.ci/run) run too; see
# docs/gateway.md, "Conformance".
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test ./e2e -run '^TestConformance$' -count=1 -v "$@"
