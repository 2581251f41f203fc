package devstack

import (
	"fmt"
	"log/slog"

	"github.com/chatmcp/chatmcp/gateway"
	"github.com/chatmcp/chatmcp/internal/ops"
	"github.com/chatmcp/chatmcp/kbs/daemon"
	"github.com/chatmcp/chatmcp/relay"
)

// opsSet holds each daemon's metric set and readiness; all nil unless
// Options.Metrics (nil sets record nothing, nil readiness ignores checks).
type opsSet struct {
	kbs          *ops.KBS
	gateway      *ops.Gateway
	relay        *ops.Relay
	kbsReady     *ops.Readiness
	gatewayReady *ops.Readiness
	relayReady   *ops.Readiness
}

// startOps gives each daemon its own registry and an ops server on a free
// loopback port, before the daemons start, so /readyz answers 503 until
// each is ready. It sets the Stack's *OpsURL fields and appends the
// servers' Close to stops.
func (st *Stack) startOps(log *slog.Logger, stops *[]func()) (*opsSet, error) {
	s := &opsSet{
		kbsReady:     ops.NewReadiness(daemon.ReadinessChecks()...),
		gatewayReady: ops.NewReadiness(gateway.ReadinessChecks()...),
		relayReady:   ops.NewReadiness(relay.ReadinessChecks()...),
	}
	for _, d := range []struct {
		name  string
		ready *ops.Readiness
		url   *string
		set   func(*opsSet, *ops.Registry)
	}{
		{"key broker", s.kbsReady, &st.KBSOpsURL, func(s *opsSet, r *ops.Registry) { s.kbs = ops.NewKBS(r) }},
		{"gateway", s.gatewayReady, &st.GatewayOpsURL, func(s *opsSet, r *ops.Registry) { s.gateway = ops.NewGateway(r) }},
		{"relay", s.relayReady, &st.RelayOpsURL, func(s *opsSet, r *ops.Registry) { s.relay = ops.NewRelay(r) }},
	} {
		reg := ops.NewRegistry()
		d.set(s, reg)
		srv, err := ops.Start(&ops.Options{Listen: "127.0.0.1:0", Registry: reg, Ready: d.ready, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("devstack: %s ops server: %w", d.name, err)
		}
		*stops = append(*stops, func() { srv.Close() })
		*d.url = srv.URL()
	}
	return s, nil
}
