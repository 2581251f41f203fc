package kbs

import (
	"crypto/hpke"
)

// encSize is the size of a DHKEM(X25519) encapsulated key.
const encSize = 32

func hpkeSeal(pk hpke.PublicKey, info, plaintext []byte) ([]byte, error) {
	return hpke.Seal(pk, hpkeKDF(), hpkeAEAD(), info, plaintext)
}

func hpkeOpen(sk hpke.PrivateKey, info, enc, ciphertext []byte) ([]byte, error) {
	if len(enc) != encSize {
		return nil, errorString("release: enc is not 32 bytes")
	}
	return hpke.Open(sk, hpkeKDF(), hpkeAEAD(), info, append(append([]byte(nil), enc...), ciphertext...))
}

type errorString string

func (e errorString) Error() string { return string(e) }
