// Package relayapi is the wire protocol of the ChatMCP relay: paths, the
// JSON bodies of its HTTP API, limits and reason codes (docs/messaging.md),
// shared by the relay (package relay) and the chat client (package chat).
// It holds types and limits only: no server, no client. The golden file
// testdata/wire.txtar pins every body's encoding.
package relayapi

import (
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/go-json-experiment/json/jsontext"
)

// Paths of the relay's HTTP API. A user's entry is PathUsers + "/" +
// address; a conversation PathConversations + "/" + ID, its membership ops
// that + "/ops".
const (
	PathNonce         = "/v1/auth/nonce"     // POST: NonceResponse
	PathLogin         = "/v1/auth/login"     // POST LoginRequest: LoginResponse
	PathUsers         = "/v1/users"          // GET /{address}: UserResponse
	PathDevices       = "/v1/devices"        // GET: DevicesResponse
	PathRevokeDevice  = "/v1/devices/revoke" // POST RevokeRequest
	PathConversations = "/v1/conversations"  // POST OpRequest: ConversationResponse; GET: ConversationsResponse; GET /{id}: ConversationResponse; POST /{id}/ops OpRequest
	PathMessages      = "/v1/messages"       // POST SendRequest: SendResponse; GET ?after&limit&folder&conversation: MessagesResponse
	PathConsent       = "/v1/consent"        // PUT ConsentRequest
	PathSettings      = "/v1/settings"       // PUT SettingsRequest
	PathWatch         = "/v1/watch"          // GET ?after, WebSocket: Message text frames
)

// Request body limits. A sign-in may carry a device's evidence
// (envelope.MaxDeviceEvidence) besides a small body.
const (
	MaxSmallBody = 64 << 10
	MaxLoginBody = MaxSmallBody + envelope.MaxDeviceEvidence
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
// session is for. A device already registered may sign in with other
// evidence (envelope.DeviceCert.Evidence) than it registered: the relay
// then publishes the new evidence (a sign-in without evidence keeps what
// is published); any other difference is ReasonDeviceConflict.
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
	// Price, when set, is what the user accepts as a payment stamp
	// (x402 `exact`) instead of proof of work.
	Price *stamp.Price `json:"price,omitzero"`
	// Revocations are the wallet-signed revocations of the user's former
	// devices; clients reject envelopes those devices signed afterwards.
	Revocations []envelope.Revocation `json:"revocations,omitzero"`
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

// OpRequest creates a conversation or changes its members. Stamps (by
// address) are for members the op adds to a group who have not allowed
// its creator, as for a message (their input's message hash is Op.Hash).
type OpRequest struct {
	Op     envelope.Op            `json:"op"`
	Stamps map[string]stamp.Stamp `json:"stamps,omitzero"`
}

// ConversationResponse is a conversation's full membership history, for the
// client to verify.
type ConversationResponse struct {
	ID  string        `json:"id"`
	Ops []envelope.Op `json:"ops"`
}

// ConversationsResponse lists the conversations the caller is a current
// member of: Conversations those it created or whose creator it allowed,
// Requests those whose creator it has not answered (a group or direct
// conversation from a stranger). Those whose creator it denied are left out.
type ConversationsResponse struct {
	Conversations []string `json:"conversations"`
	Requests      []string `json:"requests"`
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

// SettingsRequest sets the caller's proof-of-work difficulty for strangers
// and, with Price or NoPrice, the price a payment stamp pays instead
// (neither: the price is left as it is).
type SettingsRequest struct {
	Difficulty int          `json:"difficulty"`
	Price      *stamp.Price `json:"price,omitzero"`
	NoPrice    bool         `json:"no_price,omitzero"`
}

// StampNeeded names a recipient who requires a stamp and its difficulty.
type StampNeeded struct {
	Recipient wallet.Address `json:"recipient"`
	Bits      int            `json:"bits"`
	// Payment, when the recipient set a price and the relay takes
	// payments, is the x402 requirements a payment stamp for this very
	// message must meet (its memo binds the message): an alternative to
	// Bits of work.
	Payment *x402.PaymentRequirements `json:"payment,omitzero"`
}

// Error is every error response: the body every ChatMCP service answers
// errors with (Reason a stable machine-readable code, one of the Reason
// constants, that clients branch on; Error a sentence for people that may
// change) and, with ReasonStampRequired, who needs a stamp.
type Error struct {
	edge.ErrorBody `json:",inline"`
	Stamps         []StampNeeded `json:"stamps_needed,omitzero"`
}

// Reasons: the codes in Error.Reason, one per check the relay makes. They
// are part of the API: never renamed, only added.
const (
	// Requests in general.
	ReasonBadRequest = "bad_request" // malformed JSON body or query parameter
	ReasonTooLarge   = "too_large"   // body over the limit
	ReasonNoEndpoint = "no_endpoint" // no such method and path
	ReasonInternal   = "internal"    // the relay failed; the cause is in its log

	// Sign-in and sessions.
	ReasonBadSignIn       = "bad_sign_in"       // the sign-in text does not parse
	ReasonWrongDomain     = "wrong_domain"      // signed for another domain
	ReasonWrongVersion    = "wrong_version"     // sign-in version is not 1
	ReasonWrongChain      = "wrong_chain"       // sign-in chain ID is not the relay's
	ReasonNoNonce         = "no_nonce"          // sign-in without a nonce
	ReasonNoTimes         = "no_times"          // issued-at or expiration time missing
	ReasonIssuedAt        = "issued_at"         // issued-at outside the accepted window
	ReasonSignInExpired   = "sign_in_expired"   // expiration time passed
	ReasonExpiryTooLong   = "expiry_too_long"   // expiration too far after issued-at
	ReasonNotYetValid     = "not_yet_valid"     // not-before in the future
	ReasonBadSignature    = "bad_signature"     // the wallet's sign-in signature
	ReasonBadDevice       = "bad_device"        // device certificate does not verify
	ReasonDeviceWallet    = "device_wallet"     // device certificate for another wallet
	ReasonNonceInvalid    = "nonce_invalid"     // nonce unknown, expired or used (replay)
	ReasonDeviceRevoked   = "device_revoked"    // the device was revoked
	ReasonDeviceConflict  = "device_conflict"   // device ID registered with another certificate
	ReasonUnauthorized    = "unauthorized"      // no bearer session
	ReasonSessionExpired  = "session_expired"   // session unknown or expired
	ReasonBadAddress      = "bad_address"       // not a wallet address
	ReasonBadRevocation   = "bad_revocation"    // revocation does not verify
	ReasonRevocationOther = "revocation_wallet" // revocation for another wallet
	ReasonUnknownDevice   = "unknown_device"    // no such active device

	// Conversations.
	ReasonBadID               = "bad_id"               // not 32 lowercase hex characters
	ReasonBadOp               = "bad_op"               // membership op does not verify
	ReasonConversationID      = "conversation_id"      // ID not derived as the kind requires (DM squatting)
	ReasonOpNotAllowed        = "op_not_allowed"       // op does not continue the conversation as allowed
	ReasonOpConversation      = "op_conversation"      // op names another conversation than the path
	ReasonWrongSigner         = "wrong_signer"         // op, consent or envelope not by this session's device
	ReasonConversationExists  = "conversation_exists"  // creating an existing conversation
	ReasonConflict            = "conflict"             // a concurrent membership change won; retry
	ReasonUnknownConversation = "unknown_conversation" // no such conversation, or not a participant
	ReasonNotMember           = "not_member"           // a former member may not post

	// Messages, consent, stamps and settings.
	ReasonBadEnvelope   = "bad_envelope"   // envelope malformed or its signatures do not verify
	ReasonClockSkew     = "clock_skew"     // envelope time too far from the relay's clock
	ReasonEpochChanged  = "epoch_changed"  // membership changed: refresh and reseal
	ReasonReplay        = "replay"         // message ID already stored
	ReasonBadStamp      = "bad_stamp"      // stamp malformed or for a non-address
	ReasonStampRequired = "stamp_required" // stamps_needed names who needs one
	ReasonStampKind     = "stamp_kind"     // stamp kind not accepted by this relay
	ReasonStampRejected = "stamp_rejected" // stamp does not verify
	ReasonBadConsent    = "bad_consent"    // consent update does not verify
	ReasonBadDifficulty = "bad_difficulty" // difficulty out of range
	ReasonBadPrice      = "bad_price"      // a price that is malformed, or on a network this relay does not take
	ReasonNoPayments    = "no_payments"    // this relay takes no payments (no facilitator configured)
)
