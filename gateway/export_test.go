package gateway

// FastCalls is how many requests the fast path (fastpath.go) has served.
func (s *Server) FastCalls() int64 { return s.fastCalls.Load() }
