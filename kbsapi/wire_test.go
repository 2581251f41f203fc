package kbsapi_test

import (
	"bytes"
	"flag"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/internal/golden"
	"github.com/chatmcp/chatmcp/kbsapi"
)

var update = flag.Bool("update", false, "rewrite testdata/wire.txtar from the wire types")

// TestWireFormat pins the JSON of every KBS request, response and error
// body in testdata/wire.txtar; `go test ./kbsapi -update` refreshes it.
func TestWireFormat(t *testing.T) {
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fill := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	const policySHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	info := kbsapi.SecretInfo{Name: "github-token", Version: 2, Versions: []int{1, 2}, PolicySHA256: policySHA, Updated: at}
	cases := []golden.Case{
		{Name: "POST " + kbsapi.PathRequest + " request", Value: kbsapi.ChallengeRequest{Secret: "github-token", TEE: attest.SEVSNP}},
		{Name: "POST " + kbsapi.PathRequest + " response", Value: kbsapi.Challenge{Nonce: fill(kbsapi.NonceSize, 1), Expires: at.Add(time.Minute)}},
		{Name: "POST " + kbsapi.PathAttest + " request", Value: kbsapi.AttestRequest{Secret: "github-token", Nonce: fill(kbsapi.NonceSize, 1),
			Evidence: &attest.Evidence{Version: attest.EnvelopeVersion, TEE: attest.SEVSNP, Report: fill(48, 2), Certs: [][]byte{fill(16, 3)}}, PublicKey: fill(32, 4)}},
		{Name: "POST " + kbsapi.PathAttest + " response", Value: kbsapi.Release{Name: "github-token", Version: 2, Enc: fill(kbsapi.EncSize, 5), Ciphertext: fill(40, 6)}},
		{Name: "PUT " + kbsapi.PathAdminSecrets + "/{name} request", Value: kbsapi.PutRequest{Value: []byte("s3cret"), Policy: "allow: [sevsnp]\n"}},
		{Name: "PUT " + kbsapi.PathAdminSecrets + "/{name}/policy request", Value: kbsapi.PolicyRequest{Policy: "allow: [sevsnp]\n"}},
		{Name: "PUT " + kbsapi.PathAdminSecrets + "/{name} response", Value: kbsapi.SecretInfo{Name: "github-token", Version: 2, PolicySHA256: policySHA}},
		{Name: "POST " + kbsapi.PathAdminSecrets + "/{name}/revoke response", Value: kbsapi.SecretInfo{Name: "github-token", Version: 2, Revoked: true}},
		{Name: "GET " + kbsapi.PathAdminSecrets + " response", Value: kbsapi.SecretList{Secrets: []kbsapi.SecretInfo{info}}},
		{Name: "error", Value: kbsapi.ErrorBody{Error: `secret "github-token" is revoked`, Reason: kbsapi.ReasonRevoked}},
	}
	golden.Check(t, "testdata/wire.txtar", "The JSON bodies of the KBS's HTTP API (package kbsapi, docs/kbs.md).\nRefresh with: go test ./kbsapi -update\n", cases, *update)
}
