package relay

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/coder/websocket"
	"github.com/go-json-experiment/json"
)

// handleWatch upgrades to a WebSocket and streams the caller's deliveries
// after the "after" cursor as relayapi.Message JSON text frames, live.
func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request, sess *session) {
	var after int64
	if v := r.URL.Query().Get("after"); v != "" {
		var err error
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadRequest, "after: not a cursor"))
			return
		}
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	addr := sess.wallet.String()
	wake := s.hub.add(addr)
	defer s.hub.remove(addr, wake)
	// The client sends nothing; CloseRead answers pings and notices close.
	ctx := c.CloseRead(r.Context())
	tick := time.NewTicker(s.opts.PollInterval)
	defer tick.Stop()
	for {
		// Sessions end on revocation and expiry, also mid-watch.
		if ok, err := s.live(ctx, sess); !ok {
			if err == nil {
				c.Close(websocket.StatusPolicyViolation, "session ended")
			}
			return
		}
		for {
			page, err := s.page(ctx, addr, after, 100, "", "")
			if err != nil {
				if ctx.Err() == nil {
					s.opts.Logger.Error("relay: watch read failed", "err", err)
					c.Close(websocket.StatusInternalError, "internal error")
				}
				return
			}
			for _, m := range page.Messages {
				b, err := json.Marshal(m)
				if err != nil {
					return
				}
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err = c.Write(wctx, websocket.MessageText, b)
				cancel()
				if err != nil {
					return
				}
			}
			after = page.Next
			if len(page.Messages) < 100 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
	}
}
