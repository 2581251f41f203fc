package agentapi

import (
	"slices"

	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/wallet"
)

// ReceiptVersion is the version of Receipt.
const ReceiptVersion = 1

// Receipt records what the agent read and did for one reply, signed by its
// attested device key (the key its evidence binds): a member can later show
// exactly what the assistant saw and did without the agent's cooperation.
// It holds hashes only, never plaintext.
type Receipt struct {
	Version      int            `json:"version"`
	Agent        wallet.Address `json:"agent"`
	Device       string         `json:"device"`
	ConfigSHA256 Digest         `json:"config_sha256"`
	Conversation string         `json:"conversation"`
	// InReplyTo is the ID of the message the reply answers.
	InReplyTo string `json:"in_reply_to"`
	// At is the reply's time, Unix milliseconds.
	At int64 `json:"at"`
	// Read lists the messages the prompt was built from, oldest first.
	Read []ReadMessage `json:"read"`
	// Model lists each model call of the turn, in order.
	Model []ModelCall `json:"model"`
	// Tools lists each tool call of the turn, in order.
	Tools []ToolCall `json:"tools"`
	// ReplySHA256 is the SHA-256 of the reply's text.
	ReplySHA256 Digest `json:"reply_sha256"`
	Sig         []byte `json:"sig"`
}

// ReadMessage is one message the agent read: its ID, sender and the SHA-256
// of its plaintext.
type ReadMessage struct {
	ID     string         `json:"id"`
	Sender wallet.Address `json:"sender"`
	SHA256 Digest         `json:"sha256"`
}

// ModelCall is one model request and its response, as the SHA-256 of the
// exact bytes sent and received.
type ModelCall struct {
	RequestSHA256  Digest `json:"request_sha256"`
	ResponseSHA256 Digest `json:"response_sha256"`
}

// ToolCall is one tool call: the tool, the gateway's hash of its arguments
// (ArgumentsSHA256), the SHA-256 of the result's JSON as received, and the
// outcome ("ok", "error", "refused", "limit"), with the approval id when the
// gateway held it.
type ToolCall struct {
	Tool            string `json:"tool"`
	ArgumentsSHA256 Digest `json:"arguments_sha256"`
	ResultSHA256    Digest `json:"result_sha256"`
	Outcome         string `json:"outcome"`
	ApprovalID      string `json:"approval_id,omitempty"`
	// Payment is the transaction signature of the x402 payment the agent
	// made for the call (the gateway's settlement receipt), if any.
	Payment string `json:"payment,omitempty"`
}

// Validate checks the receipt's shape (not its signature).
func (r *Receipt) Validate() error {
	switch {
	case r.Version != ReceiptVersion:
		return errorf(CheckMalformed, "receipt version %d, want %d", r.Version, ReceiptVersion)
	case r.Agent.IsZero() || !validID(r.Device):
		return errorf(CheckMalformed, "receipt: no agent or device")
	case !validID(r.Conversation) || !validID(r.InReplyTo):
		return errorf(CheckMalformed, "receipt: conversation or message ID is not 32 lowercase hex characters")
	case r.At <= 0:
		return errorf(CheckMalformed, "receipt: no time")
	case len(r.Read) > MaxReceiptItems || len(r.Model) > MaxReceiptItems || len(r.Tools) > MaxReceiptItems:
		return errorf(CheckMalformed, "receipt: a list exceeds %d items", MaxReceiptItems)
	}
	for _, m := range r.Read {
		if !validID(m.ID) || m.Sender.IsZero() {
			return errorf(CheckMalformed, "receipt: a read message has no valid ID or sender")
		}
	}
	for _, t := range r.Tools {
		if t.Tool == "" || len(t.Tool) > MaxToolName || len(t.Outcome) > 32 || (t.ApprovalID != "" && !validID(t.ApprovalID)) || len(t.Payment) > 128 {
			return errorf(CheckMalformed, "receipt: malformed tool call")
		}
	}
	return nil
}

// signed returns the canonical bytes the device signs.
func (r *Receipt) signed() []byte {
	c := newCanon(TagReceipt)
	c.i64(int64(r.Version))
	c.str(r.Agent.String())
	c.str(r.Device)
	c.bytes(r.ConfigSHA256[:])
	c.str(r.Conversation)
	c.str(r.InReplyTo)
	c.i64(r.At)
	c.list(len(r.Read))
	for _, m := range r.Read {
		c.str(m.ID)
		c.str(m.Sender.String())
		c.bytes(m.SHA256[:])
	}
	c.list(len(r.Model))
	for _, m := range r.Model {
		c.bytes(m.RequestSHA256[:])
		c.bytes(m.ResponseSHA256[:])
	}
	c.list(len(r.Tools))
	for _, t := range r.Tools {
		c.str(t.Tool)
		c.bytes(t.ArgumentsSHA256[:])
		c.bytes(t.ResultSHA256[:])
		c.str(t.Outcome)
		c.str(t.ApprovalID)
	}
	c.bytes(r.ReplySHA256[:])
	// Payments are appended only when a call was paid, so receipts
	// without payments keep their bytes; they end the bytes, so their
	// presence is unambiguous.
	if slices.ContainsFunc(r.Tools, func(t ToolCall) bool { return t.Payment != "" }) {
		c.str("payments")
		for _, t := range r.Tools {
			c.str(t.Payment)
		}
	}
	return c.done()
}

// Sign fills in Agent, Device and Sig from d.
func (r *Receipt) Sign(d *envelope.Device) {
	r.Agent, r.Device = d.Cert.Wallet, d.Cert.Device
	r.Sig = d.SignDomain(TagReceipt, r.signed())
}

// Verify checks the receipt's shape and that the device whose certificate
// is cert signed it. The caller checks that cert is the agent device whose
// evidence it verified, and that ConfigSHA256 is that evidence's
// configuration digest (VerifyReceipt does both).
func (r *Receipt) Verify(cert *envelope.DeviceCert) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if !cert.Wallet.Equal(r.Agent) || cert.Device != r.Device {
		return errorf(CheckSignature, "receipt names device %s of %s, not %s of %s", r.Device, r.Agent, cert.Device, cert.Wallet)
	}
	if !envelope.VerifyDomain(cert.Signing, TagReceipt, r.signed(), r.Sig) {
		return errorf(CheckSignature, "receipt signature does not verify")
	}
	return nil
}

// VerifyReceipt checks r against an agent device and its evidence: the
// signature by that device, the configuration digest the evidence binds,
// and that the reply's text is the one the receipt hashes. The evidence
// itself must already have passed Evidence.Verify with cert's keys.
func VerifyReceipt(r *Receipt, replyText string, cert *envelope.DeviceCert, ev *Evidence) error {
	if err := r.Verify(cert); err != nil {
		return err
	}
	if ev != nil && ev.Config.Digest() != r.ConfigSHA256 {
		return errorf(CheckConfig, "receipt names configuration %s, the evidence binds %s", r.ConfigSHA256, ev.Config.Digest())
	}
	if Sum([]byte(replyText)) != r.ReplySHA256 {
		return errorf(CheckSignature, "reply text does not match the receipt's hash")
	}
	return nil
}
