package relay

// count is the number of live watchers on this replica, for the
// chatmcp_relay_watchers gauge (Options.Metrics).
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, set := range h.watchers {
		n += len(set)
	}
	return n
}
