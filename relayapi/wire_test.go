package relayapi_test

import (
	"bytes"
	"crypto/ed25519"
	"flag"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/internal/golden"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/wallet"
)

var update = flag.Bool("update", false, "rewrite testdata/wire.txtar from the wire types")

// fill is n bytes of b: fixed stand-ins for keys and signatures (the
// golden file pins encodings, not validity).
func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

func addr(t *testing.T, b byte) wallet.Address {
	a, err := wallet.AddressFromPublicKey(ed25519.PublicKey(fill(32, b)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestWireFormat pins the JSON of every relay request, response and error
// body in testdata/wire.txtar; `go test ./relayapi -update` refreshes it.
func TestWireFormat(t *testing.T) {
	alice, bob := addr(t, 1), addr(t, 2)
	const device = "0123456789abcdef0123456789abcdef"
	const conv = "fedcba9876543210fedcba9876543210"
	cert := envelope.DeviceCert{Wallet: alice, Device: device, HPKE: fill(32, 3), Signing: fill(32, 4), Created: 1767225600000, Sig: fill(64, 5)}
	rev := envelope.Revocation{Wallet: alice, Device: device, Revoked: 1767225700000, Sig: fill(64, 6)}
	op := envelope.Op{Conversation: conv, Kind: envelope.KindGroup, Epoch: 1, Creator: alice, Members: envelope.SortMembers([]wallet.Address{alice, bob}),
		At: 1767225600000, Nonce: fill(16, 7), Signer: cert, Sig: fill(64, 8)}
	env := envelope.Envelope{V: 1, ID: device, Conversation: conv, Epoch: 1, MembersHash: fill(32, 9), SentAt: 1767225600000, Sender: cert,
		Keys: []envelope.WrappedKey{{Device: device, Key: fill(80, 10)}}, Ciphertext: fill(24, 11), Sig: fill(64, 12)}
	envJSON, err := json.Marshal(env, json.Deterministic(true))
	if err != nil {
		t.Fatal(err)
	}
	st := stamp.Stamp{Kind: stamp.KindPoW, Proof: fill(8, 13)}
	consent := envelope.ConsentUpdate{Peer: bob, State: envelope.Allowed, At: 1767225600000, Signer: cert, Sig: fill(64, 14)}
	cases := []golden.Case{
		{Name: "POST " + relayapi.PathNonce + " response", Value: relayapi.NonceResponse{Nonce: "00112233445566778899aabbccddeeff", Domain: "relay.example:8444", ChainID: "mainnet", Expires: 1767225900000}},
		{Name: "POST " + relayapi.PathLogin + " request", Value: relayapi.LoginRequest{Message: "relay.example:8444 wants you to sign in with your Solana account:\n...", Signature: fill(64, 15), Device: cert}},
		{Name: "POST " + relayapi.PathLogin + " response", Value: relayapi.LoginResponse{Token: "c2Vzc2lvbi10b2tlbg", Expires: 1767312000000}},
		{Name: "GET " + relayapi.PathUsers + "/{address} response", Value: relayapi.UserResponse{Address: alice, Devices: []envelope.DeviceCert{cert}, Difficulty: 20, Revocations: []envelope.Revocation{rev}}},
		{Name: "GET " + relayapi.PathDevices + " response", Value: relayapi.DevicesResponse{Devices: []relayapi.Device{{Cert: cert}, {Cert: cert, Revoked: 1767225700000}}}},
		{Name: "POST " + relayapi.PathRevokeDevice + " request", Value: relayapi.RevokeRequest{Revocation: rev}},
		{Name: "POST " + relayapi.PathConversations + " request", Value: relayapi.OpRequest{Op: op, Stamps: map[string]stamp.Stamp{bob.String(): st}}},
		{Name: "GET " + relayapi.PathConversations + "/{id} response", Value: relayapi.ConversationResponse{ID: conv, Ops: []envelope.Op{op}}},
		{Name: "GET " + relayapi.PathConversations + " response", Value: relayapi.ConversationsResponse{Conversations: []string{conv}, Requests: []string{}}},
		{Name: "POST " + relayapi.PathMessages + " request", Value: relayapi.SendRequest{Envelope: envJSON, Stamps: map[string]stamp.Stamp{bob.String(): st}}},
		{Name: "POST " + relayapi.PathMessages + " response", Value: relayapi.SendResponse{ID: device, Seq: 42}},
		{Name: "GET " + relayapi.PathMessages + " response", Value: relayapi.MessagesResponse{Messages: []relayapi.Message{{Seq: 42, Folder: relayapi.FolderRequests, Sender: alice, Envelope: envJSON}}, Next: 42}},
		{Name: "PUT " + relayapi.PathConsent + " request", Value: relayapi.ConsentRequest{Update: consent}},
		{Name: "PUT " + relayapi.PathSettings + " request", Value: relayapi.SettingsRequest{Difficulty: 22}},
		{Name: "GET " + relayapi.PathWatch + " frame", Value: relayapi.Message{Seq: 43, Folder: relayapi.FolderInbox, Sender: bob, Envelope: envJSON}},
		{Name: "error", Value: relayapi.Error{ErrorBody: edge.ErrorBody{Error: "unknown conversation " + conv, Reason: relayapi.ReasonUnknownConversation}}},
		{Name: "error stamp_required", Value: relayapi.Error{ErrorBody: edge.ErrorBody{Error: "stamp required: 1 recipient(s) have not allowed you", Reason: relayapi.ReasonStampRequired},
			Stamps: []relayapi.StampNeeded{{Recipient: bob, Bits: 20}}}},
	}
	golden.Check(t, "testdata/wire.txtar", "The JSON bodies of the relay's HTTP API (package relayapi, docs/messaging.md).\nRefresh with: go test ./relayapi -update\n", cases, *update)
}
