package ops

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Relay is chatmcp-relay's metric set. A nil *Relay records nothing.
type Relay struct {
	// HTTP counts requests per route.
	HTTP *HTTP

	messages   prometheus.Counter
	deliveries prometheus.Counter
	watchers   atomic.Pointer[func() int]
}

// NewRelay registers the relay's metrics with reg:
//
//	chatmcp_relay_messages_total     envelopes stored
//	chatmcp_relay_deliveries_total   deliveries stored (one per recipient)
//	chatmcp_relay_watchers           live WebSocket watchers on this replica
//
// plus the HTTP family. The relay sees only ciphertext; none of it is a label.
func NewRelay(reg prometheus.Registerer) *Relay {
	r := &Relay{
		HTTP: NewHTTP(reg),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatmcp_relay_messages_total",
			Help: "Message envelopes stored.",
		}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chatmcp_relay_deliveries_total",
			Help: "Deliveries stored, one per recipient of a message.",
		}),
	}
	watchers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chatmcp_relay_watchers",
		Help: "Live watchers (WebSocket streams) on this replica.",
	}, func() float64 {
		if f := r.watchers.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	})
	reg.MustRegister(r.messages, r.deliveries, watchers)
	return r
}

// HTTPMetrics returns the HTTP metric set, nil when r is.
func (r *Relay) HTTPMetrics() *HTTP {
	if r == nil {
		return nil
	}
	return r.HTTP
}

// MessageStored counts one stored envelope with its deliveries.
func (r *Relay) MessageStored(deliveries int) {
	if r != nil {
		r.messages.Inc()
		r.deliveries.Add(float64(deliveries))
	}
}

// SetWatchers makes n the source of the watchers gauge.
func (r *Relay) SetWatchers(n func() int) {
	if r != nil {
		r.watchers.Store(&n)
	}
}
