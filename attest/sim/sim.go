// Package sim is an INSECURE software stand-in for a TEE, for development and
// tests only: it produces and verifies attestation evidence without any
// hardware, and its evidence proves nothing about the code that produced it.
//
// # Why it is insecure
//
// Evidence is signed with an Ed25519 key derived from the public constant
// KeySeed, printed in this source file. Anyone can therefore both verify
// and FORGE simulator evidence for any measurement and any report data. The
// signature only catches accidental corruption and lets the full pipeline
// (envelope, verifier, policy, report-data binding, RA-TLS) run end to end
// on a laptop. Every claim it yields has Insecure set, and attest.Checker
// rejects it unless the policy lists "sim" in its allow list, which no
// default policy does. Never allow sim in a policy that guards real secrets.
package sim

import (
	"crypto/ed25519"
	"crypto/sha512"
	"time"
)

// KeySeed is the PUBLISHED seed of the simulator's Ed25519 signing key.
// Because it is public, the key signs nothing trustworthy: anyone holding
// this source can forge simulator evidence. It exists only so that tampered
// or truncated evidence is detected in development.
const KeySeed = "chatmcp/sim/v1 INSECURE publicly known simulator signing key seed: anyone can forge with it"

// Format is the value of the "format" field of every simulator statement.
const Format = "chatmcp-sim/v1"

// MeasurementSize is the size of a simulated measurement: a SHA-384 digest,
// like SEV-SNP, TDX and Nitro measurements.
const MeasurementSize = sha512.Size384

// MeasurementEnv names the environment variable that, when set to 96 hex
// digits, replaces the simulated measurement (otherwise the SHA-384 of the
// running executable).
const MeasurementEnv = "CHATMCP_SIM_MEASUREMENT"

// MaxStatementSize caps a simulator report; real ones are about 500 bytes.
const MaxStatementSize = 4 << 10

// minTime and maxTime bound a statement time; they keep the policy's time
// arithmetic far from overflow.
var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// signingContext prefixes the signed bytes so that a signature by the
// simulator key over a statement can never be mistaken for a signature over
// anything else that might (unwisely) be signed with the same public key.
const signingContext = "chatmcp/sim/v1 statement\x00"

// privateKey derives the well-known simulator key. SHA-512 of the seed
// string, truncated to 32 bytes, is the Ed25519 seed.
func privateKey() ed25519.PrivateKey {
	sum := sha512.Sum512([]byte(KeySeed))
	return ed25519.NewKeyFromSeed(sum[:ed25519.SeedSize])
}

// PublicKey returns the simulator's (well-known) Ed25519 public key.
func PublicKey() ed25519.PublicKey {
	return privateKey().Public().(ed25519.PublicKey)
}

func signedBytes(statement []byte) []byte {
	return append([]byte(signingContext), statement...)
}
