package agentapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/chatmcp/chatmcp/wallet"
)

// MessagePrefix starts the plaintext of every structured message; the rest
// is the JSON of a Message. A plaintext without it is a plain text message
// (KindText). The envelope authenticates the sender either way: a member
// can write the prefix by hand, so a receiver trusts a structured message
// only as far as its verified sender (a grant counts only from the
// approver it names).
const MessagePrefix = "chatmcp/agent/v1 message\n"

// Kind is the kind of an in-conversation message.
type Kind string

// Message kinds.
const (
	KindText            Kind = "text"
	KindGrant           Kind = "agent.grant"
	KindApprovalRequest Kind = "agent.approval_request"
	KindReply           Kind = "agent.reply"
)

// Message is one in-conversation message: exactly the field its Kind names
// is set.
type Message struct {
	Kind            Kind             `json:"kind"`
	Text            string           `json:"text,omitempty"`
	Grant           *Grant           `json:"grant,omitempty"`
	ApprovalRequest *ApprovalRequest `json:"approval_request,omitempty"`
	Reply           *Reply           `json:"reply,omitempty"`
}

// Grant delegates a capability to an agent in one conversation. Token is a
// captoken derived offline from the approver's own gateway token (so never
// wider than it), narrowed to Tools and Expires and naming Approver as the
// approver of its held calls.
type Grant struct {
	Token        string         `json:"token"`
	Approver     wallet.Address `json:"approver"`
	Agent        wallet.Address `json:"agent"`
	Tools        []string       `json:"tools"`
	Expires      time.Time      `json:"expires"`
	Conversation string         `json:"conversation"`
}

// ApprovalRequest tells the conversation that one of the agent's calls
// waits at the gateway for the approver's decision.
type ApprovalRequest struct {
	// ID is the gateway's approval id.
	ID      string `json:"approval_id"`
	Gateway string `json:"gateway"`
	Tool    string `json:"tool"`
	// Arguments are the call's complete arguments as canonical JSON
	// (CanonicalArguments): what the gateway will execute, not a summary.
	// A decision binds ArgumentsSHA256, the gateway's hash of them; an
	// approver's client shows Arguments only after VerifyArguments, so
	// what the person reads is what they sign.
	Arguments       string         `json:"arguments"`
	ArgumentsSHA256 Digest         `json:"arguments_sha256"`
	RequestedBy     wallet.Address `json:"requested_by"`
	Expires         time.Time      `json:"expires"`
}

// Reply is the agent's answer, with the receipt of what it read and did.
type Reply struct {
	Text    string   `json:"text"`
	Receipt *Receipt `json:"receipt"`
}

// Encode returns the plaintext of m. A KindText message whose text does not
// start with MessagePrefix is its text unchanged.
func Encode(m *Message) (string, error) {
	if err := m.Validate(); err != nil {
		return "", err
	}
	if m.Kind == KindText && !strings.HasPrefix(m.Text, MessagePrefix) {
		return m.Text, nil
	}
	b, err := jsonv2.Marshal(m)
	if err != nil {
		return "", errorf(CheckMalformed, "encoding message: %w", err)
	}
	return MessagePrefix + string(b), nil
}

// ParseMessage decodes a conversation plaintext: without MessagePrefix it is
// a text message; with it, a strictly decoded and validated Message.
func ParseMessage(plaintext string) (*Message, error) {
	rest, ok := strings.CutPrefix(plaintext, MessagePrefix)
	if !ok {
		return &Message{Kind: KindText, Text: plaintext}, nil
	}
	if len(rest) > MaxMessageSize {
		return nil, errorf(CheckMalformed, "structured message of %d bytes exceeds %d", len(rest), MaxMessageSize)
	}
	var m Message
	if err := wire.Decode([]byte(rest), &m); err != nil {
		return nil, errorf(CheckMalformed, "structured message: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks that exactly the field of m's kind is set and valid.
func (m *Message) Validate() error {
	set := 0
	for _, p := range []bool{m.Grant != nil, m.ApprovalRequest != nil, m.Reply != nil} {
		if p {
			set++
		}
	}
	switch m.Kind {
	case KindText:
		if set != 0 {
			return errorf(CheckMalformed, "text message carries a structured field")
		}
		return nil
	case KindGrant:
		if set != 1 || m.Grant == nil || m.Text != "" {
			return errorf(CheckMalformed, "grant message must carry exactly a grant")
		}
		return m.Grant.Validate()
	case KindApprovalRequest:
		if set != 1 || m.ApprovalRequest == nil || m.Text != "" {
			return errorf(CheckMalformed, "approval request message must carry exactly an approval request")
		}
		return m.ApprovalRequest.Validate()
	case KindReply:
		if set != 1 || m.Reply == nil || m.Text != "" {
			return errorf(CheckMalformed, "reply message must carry exactly a reply")
		}
		return m.Reply.Validate()
	}
	return errorf(CheckMalformed, "unknown message kind %q", truncate(string(m.Kind), 40))
}

// Validate checks the grant's shape (not its token's signature: only the
// gateway can check that).
func (g *Grant) Validate() error {
	switch {
	case g.Token == "" || len(g.Token) > MaxTokenLen:
		return errorf(CheckMalformed, "grant: token of %d bytes, want 1 to %d", len(g.Token), MaxTokenLen)
	case g.Approver.IsZero() || g.Agent.IsZero():
		return errorf(CheckMalformed, "grant: no approver or agent")
	case len(g.Tools) == 0 || len(g.Tools) > MaxTools:
		return errorf(CheckMalformed, "grant: %d tool patterns, want 1 to %d", len(g.Tools), MaxTools)
	case g.Expires.IsZero():
		return errorf(CheckMalformed, "grant: no expiry")
	case !validID(g.Conversation):
		return errorf(CheckMalformed, "grant: conversation ID is not 32 lowercase hex characters")
	}
	for _, t := range g.Tools {
		if t == "" || len(t) > MaxToolName {
			return errorf(CheckMalformed, "grant: tool pattern of %d bytes, want 1 to %d", len(t), MaxToolName)
		}
	}
	return nil
}

// Validate checks the approval request's shape.
func (r *ApprovalRequest) Validate() error {
	switch {
	case !validID(r.ID):
		return errorf(CheckMalformed, "approval request: id is not 32 lowercase hex characters")
	case r.Gateway == "" || len(r.Gateway) > MaxURLLen:
		return errorf(CheckMalformed, "approval request: gateway URL of %d bytes, want 1 to %d", len(r.Gateway), MaxURLLen)
	case r.Tool == "" || len(r.Tool) > MaxToolName:
		return errorf(CheckMalformed, "approval request: tool name of %d bytes, want 1 to %d", len(r.Tool), MaxToolName)
	case r.Arguments == "" || len(r.Arguments) > MaxArguments:
		return errorf(CheckMalformed, "approval request: arguments of %d bytes, want 1 to %d", len(r.Arguments), MaxArguments)
	case r.ArgumentsSHA256.IsZero():
		return errorf(CheckMalformed, "approval request: no arguments hash")
	case r.RequestedBy.IsZero():
		return errorf(CheckMalformed, "approval request: no requester")
	case r.Expires.IsZero():
		return errorf(CheckMalformed, "approval request: no expiry")
	}
	return nil
}

// VerifyArguments checks that the request's Arguments are canonical JSON
// whose hash is its ArgumentsSHA256: that the arguments a person reads are
// the ones the statement they sign binds (and the gateway executes). A
// request that fails it must be neither shown as approvable nor signed;
// the error's check is CheckArguments.
func (r *ApprovalRequest) VerifyArguments() error {
	canon, err := CanonicalArguments([]byte(r.Arguments))
	if err != nil {
		return errorf(CheckArguments, "approval request %s: arguments are not one JSON object: %w", r.ID, err)
	}
	if string(canon) != r.Arguments {
		return errorf(CheckArguments, "approval request %s: arguments are not in canonical form", r.ID)
	}
	if got := Sum(canon); got != r.ArgumentsSHA256 {
		return errorf(CheckArguments, "approval request %s: its arguments hash to %s, not to the arguments_sha256 %s it asks you to sign", r.ID, got, r.ArgumentsSHA256)
	}
	return nil
}

// Validate checks the reply's shape and its receipt's.
func (r *Reply) Validate() error {
	if len(r.Text) > MaxReplyText {
		return errorf(CheckMalformed, "reply of %d bytes exceeds %d", len(r.Text), MaxReplyText)
	}
	if r.Receipt == nil {
		return errorf(CheckMalformed, "reply has no receipt")
	}
	return r.Receipt.Validate()
}

// ArgumentsSHA256 is the gateway's hash of a tools/call's arguments: the
// arguments object (absent or null = empty) decoded with numbers kept as
// written, re-encoded by encoding/json (keys sorted, no white space), and
// hashed with SHA-256. It is the arguments_sha256 of the gateway's held
// call, of an ApprovalRequest and of an ApprovalStatement. Input the
// gateway refuses (not one object, duplicate keys, invalid UTF-8) is refused
// here too.
func ArgumentsSHA256(raw []byte) (Digest, error) {
	b, err := CanonicalArguments(raw)
	if err != nil {
		return Digest{}, err
	}
	return Sum(b), nil
}

// CanonicalArguments returns the bytes ArgumentsSHA256 hashes: raw decoded
// with numbers kept as written and re-encoded by encoding/json (keys
// sorted, no white space); absent or null is {}.
func CanonicalArguments(raw []byte) ([]byte, error) {
	args := map[string]any{}
	if len(raw) > 0 && string(raw) != "null" {
		if err := wire.Decode(raw, new(map[string]any)); err != nil {
			return nil, errorf(CheckMalformed, "arguments: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&args); err != nil || args == nil {
			return nil, errorf(CheckMalformed, "arguments must be a JSON object")
		}
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, errorf(CheckMalformed, "encoding arguments: %w", err)
	}
	return b, nil
}
