// Package edge is the HTTP edge every ChatMCP service shares: on the server
// side one error type (status, reason code, message for the peer, internal
// cause that is logged and never sent, after smallstep's errs.Error), one
// strict JSON body decoder with a size limit and one bearer-token parser;
// on the client side one request function that turns an error answer into a
// typed *APIError carrying the service's reason code. Callers branch and
// retry on reason codes, never on the words of a message.
//
// It knows no service: each API package (relayapi, gatewayapi, kbsapi)
// names its reason codes, and each server passes the few the edge itself
// needs in a Codes.
package edge

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/go-json-experiment/json"
)

// ErrorBody is the JSON body of every error answer of every ChatMCP
// service: Reason is a short stable code (one of the service's API package
// constants) that callers branch on; Error is a sentence for people and may
// change. A service may add members (the relay's stamps_needed).
type ErrorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// Error is a refusal as a server answers it. Status, Reason and Msg are
// sent; Cause is logged and never sent, so no internal detail reaches a
// remote peer.
type Error struct {
	// Status is the HTTP status. If zero, 500.
	Status int
	// Reason is the stable reason code. Required.
	Reason string
	// Msg is the sentence the peer sees: it names the failed check, not a
	// stack of wrappers.
	Msg string
	// Cause is the internal error behind the refusal, logged by WriteError.
	// Nil for a plain refusal of a bad request.
	Cause error
	// Body, if not nil, is sent instead of ErrorBody{Msg, Reason}: a
	// service's error body with members of its own, carrying the same
	// reason and message.
	Body any
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Msg + ": " + e.Cause.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns a refusal of a request: status, reason code and the
// message the peer sees. It panics without a reason code (programmer
// misuse: every refusal names its check).
func Errorf(status int, reason, format string, args ...any) *Error {
	if reason == "" {
		panic("edge: a refusal without a reason code")
	}
	return &Error{Status: status, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns a refusal that keeps cause for the log; the peer sees msg.
func Wrap(status int, reason string, cause error, msg string) *Error {
	e := Errorf(status, reason, "%s", msg)
	e.Cause = cause
	return e
}

// Codes are the reason codes a service answers the edge's own refusals
// with. Each service published its words before this package existed, so
// they differ between services (the relay's "too_large", the KBS's "too
// large"); each API package keeps its own.
type Codes struct {
	// Malformed: a body that is not strict JSON of the expected shape (400).
	Malformed string
	// TooLarge: a body over its limit (413).
	TooLarge string
	// Internal: the service failed; the cause is in its log (500).
	Internal string
}

// Server is one service's half of the edge: its codes and its log.
type Server struct {
	// Name prefixes log lines, e.g. "relay".
	Name string
	// Codes are the service's reason codes for the edge's own refusals.
	Codes Codes
	// Logger receives internal causes (never sent). If nil, slog.Default().
	Logger *slog.Logger
}

// ReadBody reads a request body of at most limit bytes. A longer one is a
// TooLarge refusal (413).
func (s *Server) ReadBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, s.Codes.Malformed, "reading request body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, Errorf(http.StatusRequestEntityTooLarge, s.Codes.TooLarge, "request body larger than %d bytes", limit)
	}
	return b, nil
}

// DecodeJSON reads a strict JSON body (internal/wire: no unknown members,
// duplicate names, trailing data or deep nesting) of at most limit bytes
// into v. Its errors are refusals: TooLarge (413) or Malformed (400).
func (s *Server) DecodeJSON(r *http.Request, limit int64, v any) error {
	b, err := s.ReadBody(r, limit)
	if err != nil {
		return err
	}
	return s.Decode(b, v)
}

// Decode decodes a strict JSON body already read; its error is a
// Malformed refusal (400).
func (s *Server) Decode(b []byte, v any) error {
	if err := wire.Decode(b, v); err != nil {
		return Errorf(http.StatusBadRequest, s.Codes.Malformed, "malformed request: %v", err)
	}
	return nil
}

// Internal is the refusal of a request that failed inside the service:
// the peer sees "internal error", the log sees cause.
func (s *Server) Internal(cause error) *Error {
	return Wrap(http.StatusInternalServerError, s.Codes.Internal, cause, "internal error")
}

// WriteError answers err. An *Error in err's chain is sent as it is (its
// Cause logged); any other error is internal: logged, and answered 500
// with the Internal code and no detail.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = s.Internal(err)
	}
	if e.Cause != nil {
		log := s.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Error(s.Name+": request failed", "method", r.Method, "path", r.URL.Path, "reason", e.Reason, "msg", e.Msg, "err", e.Cause)
	}
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	var body any = ErrorBody{Error: e.Msg, Reason: e.Reason}
	if e.Body != nil {
		body = e.Body
	}
	WriteJSON(w, status, body)
}

// WriteJSON answers v as JSON with status; the answer is never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.MarshalWrite(w, v, json.Deterministic(true))
}

// ErrNoBearer is returned by Bearer for a request without a bearer token.
var ErrNoBearer = errors.New("missing bearer token")

// Bearer returns the request's bearer token (RFC 6750: "Authorization:
// Bearer TOKEN", the scheme case-insensitive), or ErrNoBearer.
func Bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", ErrNoBearer
	}
	tok := strings.TrimSpace(h[len(prefix):])
	if tok == "" {
		return "", ErrNoBearer
	}
	return tok, nil
}
