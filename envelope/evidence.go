package envelope

import (
	"errors"
	"fmt"
)

// MaxDeviceEvidence caps DeviceCert.Evidence: a TEE report with its
// certificate chain (a few KB) in base64, and an agent's configuration with
// a system prompt of up to 16 KiB, with room to spare. It is small enough
// that a sign-in carrying it stays a small request.
const MaxDeviceEvidence = 48 << 10

// A device certificate's Evidence is what an attested device (an agent,
// chatmcp-agent) publishes so that members can check what code holds its
// keys before they wrap a content key to it: an agentapi.Evidence, TEE
// evidence whose report data binds the certificate's HPKE and signing keys
// and the agent's configuration, with that configuration.
//
// The wallet's signature does not cover it: the evidence binds itself to
// the device's keys, so nobody can attach someone else's evidence to a
// device, and a device can refresh its evidence (a restart, a new
// configuration) under the certificate its wallet signed once. The relay
// stores it with the certificate and serves it in the user directory; it
// never interprets it. This package checks only its size and that it is a
// JSON object; agentapi parses it and verifies it against a policy.
//
// Objects a device signs (envelopes, membership ops, consent updates) carry
// its certificate without the evidence (Bare): members read the evidence
// from the directory, and every message stays small.

// checkEvidence checks Evidence's shape (not its contents).
func (c *DeviceCert) checkEvidence() error {
	if len(c.Evidence) == 0 {
		return nil
	}
	if len(c.Evidence) > MaxDeviceEvidence {
		return fmt.Errorf("device certificate: evidence of %d bytes exceeds %d", len(c.Evidence), MaxDeviceEvidence)
	}
	if c.Evidence.Kind() != '{' || !c.Evidence.IsValid() {
		return errors.New("device certificate: evidence is not a JSON object")
	}
	return nil
}

// HasEvidence reports whether the certificate carries evidence: whether it
// claims to be an attested device (an agent).
func (c *DeviceCert) HasEvidence() bool { return len(c.Evidence) > 0 }

// Bare returns the certificate without its evidence: what the wallet signed.
func (c *DeviceCert) Bare() DeviceCert {
	b := *c
	b.Evidence = nil
	return b
}
