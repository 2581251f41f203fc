// Package relayapi defines the JSON bodies of the relay's HTTP API (see
// docs/messaging.md), shared by the relay and the chat client. It holds
// types and limits only: no server, no client.
package relayapi

import (
	"github.com/chatmcp/chatmcp/chat/envelope"
	"github.com/chatmcp/chatmcp/chat/stamp"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/go-json-experiment/json/jsontext"
)

// Request body limits.
const (
	MaxSmallBody = 64 << 10
	MaxSendBody  = envelope.MaxEnvelope + 256*stamp.MaxStamp
	MaxPageSize  = 500
)

// Folders a delivered message is in for its recipient.
const (
	FolderInbox    = "inbox"
	FolderRequests = "requests"
)

// NonceResponse is a fresh single-use sign-in nonce and what the relay
// expects in the Sign-In With Solana message.
type NonceResponse struct {
	Nonce   string `json:"nonce"`
	Domain  string `json:"domain"`
	ChainID string `json:"chain_id"`
	Expires int64  `json:"expires"` // Unix milliseconds
}

// LoginRequest is a signed Sign-In With Solana message and the device the
// session is for.
type LoginRequest struct {
	Message   string              `json:"message"`
	Signature []byte              `json:"signature"`
	Device    envelope.DeviceCert `json:"device"`
}

// LoginResponse carries a bearer session token.
type LoginResponse struct {
	Token   string `json:"token"`
	Expires int64  `json:"expires"`
}

// UserResponse is a user's published directory entry.
type UserResponse struct {
	Address    wallet.Address        `json:"address"`
	Devices    []envelope.DeviceCert `json:"devices"`
	Difficulty int                   `json:"difficulty"`
}

// Device is one of the caller's devices.
type Device struct {
	Cert    envelope.DeviceCert `json:"cert"`
	Revoked int64               `json:"revoked,omitzero"`
}

// DevicesResponse lists the caller's devices, revoked ones included.
type DevicesResponse struct {
	Devices []Device `json:"devices"`
}

// RevokeRequest revokes a device.
type RevokeRequest struct {
	Revocation envelope.Revocation `json:"revocation"`
}

// OpRequest creates a conversation or changes its members.
type OpRequest struct {
	Op envelope.Op `json:"op"`
}

// ConversationResponse is a conversation's full membership history, for the
// client to verify.
type ConversationResponse struct {
	ID  string        `json:"id"`
	Ops []envelope.Op `json:"ops"`
}

// ConversationsResponse lists the caller's current conversations.
type ConversationsResponse struct {
	Conversations []string `json:"conversations"`
}

// SendRequest posts an envelope with stamps for recipients (by address)
// who have not allowed the sender.
type SendRequest struct {
	Envelope jsontext.Value         `json:"envelope"`
	Stamps   map[string]stamp.Stamp `json:"stamps,omitzero"`
}

// SendResponse acknowledges a durably stored message.
type SendResponse struct {
	ID  string `json:"id"`
	Seq int64  `json:"seq"`
}

// Message is one delivered envelope.
type Message struct {
	Seq      int64          `json:"seq"`
	Folder   string         `json:"folder"`
	Sender   wallet.Address `json:"sender"`
	Envelope jsontext.Value `json:"envelope"`
}

// MessagesResponse is a page of messages; Next is the cursor for the
// following page (the last Seq, or the request's cursor when empty).
type MessagesResponse struct {
	Messages []Message `json:"messages"`
	Next     int64     `json:"next"`
}

// ConsentRequest records an allow or deny decision.
type ConsentRequest struct {
	Update envelope.ConsentUpdate `json:"update"`
}

// SettingsRequest sets the caller's proof-of-work difficulty for strangers.
type SettingsRequest struct {
	Difficulty int `json:"difficulty"`
}

// StampNeeded names a recipient who requires a stamp and its difficulty.
type StampNeeded struct {
	Recipient wallet.Address `json:"recipient"`
	Bits      int            `json:"bits"`
}

// Error is every error response.
type Error struct {
	Error  string        `json:"error"`
	Stamps []StampNeeded `json:"stamps_needed,omitzero"`
}
