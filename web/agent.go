package web

import (
	"context"
	"net/http"
)

// routeAgent serves a conversation's assistant actions. The assistant
// (issue 11: agentapi, `chatmcp chat agent`) has not landed, so there are
// none yet.
func (s *Server) routeAgent(w http.ResponseWriter, r *http.Request, sess *session, u *user, id, action string) {
	http.NotFound(w, r)
}

// agentSection is the conversation page's assistant section; nil shows
// none.
func (s *Server) agentSection(ctx context.Context, u *user, id string) any { return nil }
