// Package fake builds generated Nitro certificate chains and signed
// attestation documents for tests; nothing it makes chains to AWS.
package fake

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// Time returns when fake documents are produced; fake certificates are
// valid for an hour either side of it.
func Time() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// CA is a generated three-level chain shaped like AWS's (root,
// intermediate, leaf) with knobs to break it.
type CA struct {
	Root, Inter, Leaf          *x509.Certificate
	RootKey, InterKey, LeafKey crypto.Signer
}

// ChainOpts says how to break a generated chain; the zero value is valid.
type ChainOpts struct {
	InterNotCA      bool // intermediate lacks basicConstraints CA
	InterNoCertSign bool // intermediate lacks keyCertSign
	LeafIsCA        bool // leaf claims to be a CA
	LeafNoDigSig    bool // leaf lacks digitalSignature
	LeafP256        bool // leaf key on the wrong curve
}

func newCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// P384 generates a P-384 key.
func P384(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewCA generates a chain broken as o says.
func NewCA(t testing.TB, o ChainOpts) *CA {
	t.Helper()
	nb, na := Time().Add(-time.Hour), Time().Add(time.Hour)
	f := &CA{RootKey: P384(t), InterKey: P384(t)}
	rootT := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake nitro root"},
		NotBefore: nb, NotAfter: na, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	f.Root = newCert(t, rootT, rootT, f.RootKey.Public(), f.RootKey)
	interT := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "fake nitro intermediate"},
		NotBefore: nb, NotAfter: na, IsCA: !o.InterNotCA, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	if o.InterNoCertSign {
		interT.KeyUsage = x509.KeyUsageDigitalSignature
	}
	f.Inter = newCert(t, interT, f.Root, f.InterKey.Public(), f.RootKey)
	if o.LeafP256 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		f.LeafKey = k
	} else {
		f.LeafKey = P384(t)
	}
	leafT := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "fake enclave"},
		NotBefore: nb, NotAfter: na, IsCA: o.LeafIsCA, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if o.LeafIsCA {
		leafT.KeyUsage |= x509.KeyUsageCertSign
	}
	if o.LeafNoDigSig {
		leafT.KeyUsage = x509.KeyUsageKeyEncipherment
	}
	f.Leaf = newCert(t, leafT, f.Inter, f.LeafKey.Public(), f.InterKey)
	return f
}

// Roots is a pool holding only f's root.
func (f *CA) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(f.Root)
	return p
}

// KV is one payload map entry; a slice of them keeps order and allows
// duplicates.
type KV struct {
	K string
	V any
}

// PCRMap returns PCR0..15 with PCR0, PCR1 and PCR2 filled with the given
// bytes and the rest zero.
func PCRMap(pcr0, pcr1, pcr2 byte) map[uint64][]byte {
	m := map[uint64][]byte{}
	for i := uint64(0); i < 16; i++ {
		m[i] = make([]byte, 48)
	}
	for i := range 48 {
		m[0][i], m[1][i], m[2][i] = pcr0, pcr1, pcr2
	}
	return m
}

// Fields returns a complete, valid payload for f.
func (f *CA) Fields(userData []byte) []KV {
	return []KV{
		{"module_id", "i-fake-enc0001"},
		{"digest", "SHA384"},
		{"timestamp", uint64(Time().UnixMilli())},
		{"pcrs", PCRMap(0xaa, 0xbb, 0xcc)},
		{"certificate", f.Leaf.Raw},
		{"cabundle", [][]byte{f.Root.Raw, f.Inter.Raw}},
		{"public_key", nil},
		{"user_data", userData},
		{"nonce", nil},
	}
}

// EncodeMap writes an indefinite-length CBOR map, as the NSM does.
func EncodeMap(t testing.TB, fields []KV) []byte {
	t.Helper()
	out := []byte{0xbf}
	for _, e := range fields {
		k, err := cbor.Marshal(e.K)
		if err != nil {
			t.Fatal(err)
		}
		v, err := cbor.Marshal(e.V)
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, k...), v...)
	}
	return append(out, 0xff)
}

// Sign wraps payload in an untagged COSE_Sign1 signed by key with alg.
func Sign(t testing.TB, key crypto.Signer, alg cose.Algorithm, payload []byte) []byte {
	t.Helper()
	s, err := cose.NewSigner(alg, key)
	if err != nil {
		t.Fatal(err)
	}
	msg := cose.Sign1Message{
		Headers: cose.Headers{Protected: cose.ProtectedHeader{cose.HeaderLabelAlgorithm: alg}},
		Payload: payload,
	}
	if err := msg.Sign(rand.Reader, nil, s); err != nil {
		t.Fatal(err)
	}
	b, err := (*cose.UntaggedSign1Message)(&msg).MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Doc signs a payload built from fields with the fake leaf.
func (f *CA) Doc(t testing.TB, fields []KV) []byte {
	t.Helper()
	return Sign(t, f.LeafKey, cose.AlgorithmES384, EncodeMap(t, fields))
}

// With returns fields with key k set to v (appended when absent).
func With(fields []KV, k string, v any) []KV {
	out := append([]KV(nil), fields...)
	for i := range out {
		if out[i].K == k {
			out[i].V = v
			return out
		}
	}
	return append(out, KV{k, v})
}

// Without returns fields without key k.
func Without(fields []KV, k string) []KV {
	var out []KV
	for _, e := range fields {
		if e.K != k {
			out = append(out, e)
		}
	}
	return out
}
