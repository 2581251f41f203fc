package gateway

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/chatmcp/chatmcp/gateway/authz"
)

// An upstream's input_required round, relayed to a 2026-07-28 caller on
// the fast path (fastpath.go, call_forward_post.go):
//
//  1. The gateway posts the call with the caller's own client
//     capabilities, so the upstream asks only for what the caller can
//     give. When the upstream answers input_required, the caller gets that
//     result — its input requests redacted like any result — with
//     requestState replaced by a seal: the upstream's state, encrypted and
//     authenticated under a key only this gateway process holds, bound to
//     the caller's token chain, the exposed tool and the canonical SHA-256
//     of the arguments, valid for InputRoundWindow.
//  2. The caller retries with its inputResponses and that requestState.
//     The seal is opened before anything else of the retry runs: a seal
//     that does not open, has expired, or was made for another chain, tool
//     or arguments is refused (-32602) and audited ("input state
//     mismatch"). Otherwise the retry goes through the whole call path
//     like any call, and the gateway posts it with the caller's responses
//     and the upstream's own state.
//
// The gateway keeps nothing between the rounds. The upstream's state never
// reaches the caller in the clear, and a caller cannot present another's
// round as its own. Replaying a round within its window is the
// upstream's to judge, as it would be without the gateway. A seal opens
// only in the gateway process that made it.

// InputRoundWindow is how long a relayed input round's seal is accepted.
const InputRoundWindow = 10 * time.Minute

// sealedStatePrefix starts every requestState the gateway seals.
const sealedStatePrefix = "chatmcp-input.v1."

// inputRound is what a fast-path call carries of an input round.
type inputRound struct {
	caps      any             // the caller's client capabilities (its _meta)
	sealed    string          // the retry's requestState, sealed by the gateway
	responses json.RawMessage // the retry's inputResponses
	state     string          // the upstream's state, once the seal opened
}

// newStateSealer returns the AEAD of this process's seals.
func newStateSealer() (cipher.AEAD, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// roundBinding is what a seal is bound to: chain, exposed tool, arguments.
func roundBinding(chain, tool, argsHash string) []byte {
	return []byte(chain + "\x00" + tool + "\x00" + argsHash)
}

// sealState seals the upstream's requestState state for a retry of the
// same chain, tool and arguments.
func (s *Server) sealState(state, chain, tool, argsHash string) (string, error) {
	nonce := make([]byte, s.stateSealer.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	plain := binary.BigEndian.AppendUint64(nil, uint64(s.now().Add(InputRoundWindow).Unix()))
	plain = append(plain, state...)
	out := s.stateSealer.Seal(nonce, nonce, plain, roundBinding(chain, tool, argsHash))
	return sealedStatePrefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// errRoundMismatch refuses a retry whose seal does not open for it.
var errRoundMismatch = &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams,
	Message: "chatmcp-gateway: requestState does not name an input round of yours for this tool and these arguments (or it expired); call again without it"}

// openState returns the upstream's state sealed in sealed for this chain,
// tool and arguments.
func (s *Server) openState(sealed, chain, tool, argsHash string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, sealedStatePrefix))
	n := s.stateSealer.NonceSize()
	if err != nil || len(b) < n {
		return "", errors.New("malformed seal")
	}
	plain, err := s.stateSealer.Open(nil, b[:n], b[n:], roundBinding(chain, tool, argsHash))
	if err != nil || len(plain) < 8 {
		return "", errors.New("seal does not open for this call")
	}
	if exp := time.Unix(int64(binary.BigEndian.Uint64(plain)), 0); !s.now().Before(exp) {
		return "", fmt.Errorf("seal expired at %s", exp.UTC().Format(time.RFC3339))
	}
	return string(plain[8:]), nil
}

// openRound opens the seal of a fast-path retry (step 2 above) before the
// call path runs, or refuses the retry.
func (s *Server) openRound(ctx context.Context, p *authz.Principal, params *mcp.CallToolParamsRaw, r *inputRound) error {
	if r.sealed == "" {
		return nil
	}
	_, argsHash, err := decodeArgs(params.Arguments)
	if err == nil {
		r.state, err = s.openState(r.sealed, p.ChainID, params.Name, argsHash)
	}
	if err != nil {
		t, _ := s.lookup(p, params.Name)
		s.auditRefused(ctx, &toolCall{req: &mcp.CallToolRequest{Params: params}, start: s.now(), principal: p, argsHash: argsHash, tool: t},
			"input state mismatch: "+err.Error())
		return errRoundMismatch
	}
	return nil
}
