package relay

// LiveWatchers reports how many live watchers this replica holds, so tests
// wait for a subscription instead of sleeping.
func (s *Server) LiveWatchers() int { return s.hub.count() }
