package kbs

import (
	"crypto/hpke"

	"github.com/chatmcp/chatmcp/kbsapi"
)

func hpkeSeal(pk hpke.PublicKey, info, plaintext []byte) ([]byte, error) {
	return hpke.Seal(pk, kbsapi.HPKEKDF(), kbsapi.HPKEAEAD(), info, plaintext)
}
