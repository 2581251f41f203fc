package relay

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/go-json-experiment/json"
)

// httpError is an error with the status, the stable reason code
// (relayapi.Reason*) and the one-line message a client sees. Internal
// causes are logged, never sent.
type httpError struct {
	status int
	reason string
	msg    string
	stamps []relayapi.StampNeeded
}

func (e *httpError) Error() string { return e.msg }

// errorf builds a refusal. reason is one of the relayapi.Reason constants:
// clients branch on it, never on the message.
func errorf(status int, reason, format string, args ...any) *httpError {
	if reason == "" {
		panic("relay: errorf without a reason code")
	}
	return &httpError{status: status, reason: reason, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.MarshalWrite(w, v)
}

func writeError(w http.ResponseWriter, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = errorf(http.StatusInternalServerError, relayapi.ReasonInternal, "internal error")
	}
	writeJSON(w, he.status, relayapi.Error{Reason: he.reason, Error: he.msg, Stamps: he.stamps})
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		s.opts.Logger.Error("relay: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, err)
}

// decode reads a strict JSON body of at most limit bytes.
func decode(r *http.Request, limit int64, v any) error {
	if err := wire.Read(r.Body, limit, v); err != nil {
		if errors.Is(err, wire.ErrTooLarge) {
			return errorf(http.StatusRequestEntityTooLarge, relayapi.ReasonTooLarge, "request body larger than %d bytes", limit)
		}
		return errorf(http.StatusBadRequest, relayapi.ReasonBadRequest, "malformed request: %v", err)
	}
	return nil
}
