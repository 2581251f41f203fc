package envelope

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/internal/wire"
	"github.com/go-json-experiment/json"
)

// TestDeviceEvidence: evidence rides beside the wallet's signature (changing
// it keeps the certificate valid: the evidence binds itself to the keys),
// only a JSON object within MaxDeviceEvidence passes, and every object a
// device signs carries its certificate without it.
func TestDeviceEvidence(t *testing.T) {
	alice, bob := newUser(t, 1), newUser(t, 1)
	d := alice.devices[0]
	for _, ev := range []string{`{"evidence":{},"config":{}}`, ` {"a":1} `, `{"x":"` + strings.Repeat("a", MaxDeviceEvidence-8) + `"}`} {
		c := d.Cert
		c.Evidence = []byte(ev)
		if err := c.Verify(); err != nil {
			t.Errorf("evidence of %d bytes refused: %v", len(ev), err)
		}
		bare := c.Bare()
		if !c.HasEvidence() || bare.HasEvidence() || bare.Verify() != nil {
			t.Errorf("Bare kept the evidence or broke the certificate")
		}
	}
	for _, ev := range []string{`[1]`, `"x"`, `{"a":`, `{"a":1,"a":2}`, `{"x":"` + strings.Repeat("a", MaxDeviceEvidence) + `"}`} {
		c := d.Cert
		c.Evidence = []byte(ev)
		if err := c.Verify(); err == nil || !strings.Contains(err.Error(), "evidence") {
			t.Errorf("evidence %.20q accepted: %v", ev, err)
		}
	}

	d.Cert.Evidence = []byte(`{"n":1}`)
	conv, op := group(t, alice, bob)
	e, err := Seal(rand.Reader, d, conv, bob.certs(), []byte("hi"), now)
	if err != nil {
		t.Fatal(err)
	}
	u := &ConsentUpdate{Peer: bob.w.Address(), State: Allowed, At: now.UnixMilli()}
	u.Sign(d)
	op.Sign(d)
	for name, c := range map[string]DeviceCert{"envelope sender": e.Sender, "op signer": op.Signer, "consent signer": u.Signer} {
		if c.HasEvidence() {
			t.Errorf("%s carries the evidence", name)
		}
	}
	if err := e.Verify(); err != nil {
		t.Fatal(err)
	}
}

// FuzzDeviceCert: a device certificate decoded strictly from untrusted JSON
// (a sign-in, the relay's directory) either fails Verify or verifies with
// evidence within its limits, and without its evidence still verifies.
func FuzzDeviceCert(f *testing.F) {
	d := newUser(f, 1).devices[0]
	plain, _ := json.Marshal(d.Cert)
	d.Cert.Evidence = []byte(`{"evidence":{"version":1,"tee":"sim","report":"AA=="},"config":{"name":"a"}}`)
	with, _ := json.Marshal(d.Cert)
	f.Add(plain)
	f.Add(with)
	f.Fuzz(func(t *testing.T, b []byte) {
		var c DeviceCert
		if wire.Decode(b, &c) != nil || c.Verify() != nil {
			return
		}
		if len(c.Evidence) > MaxDeviceEvidence || (c.HasEvidence() && c.Evidence.Kind() != '{') {
			t.Fatalf("verified evidence out of its limits: %q", c.Evidence)
		}
		bare := c.Bare()
		if err := bare.Verify(); err != nil {
			t.Fatalf("a verified certificate does not verify without its evidence: %v", err)
		}
	})
}
