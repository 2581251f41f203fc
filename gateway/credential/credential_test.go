package credential

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

const tokenID = "0123456789abcdef0123456789abcdef"

func TestSealOpen(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := Seal(k.PublicKey(), tokenID, []byte(`{"gh":"ghp_example1","slack":"xoxb-example"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(sealed)
	creds, err := k.Open(body, tokenID)
	if err != nil || string(creds["gh"]) != "ghp_example1" || string(creds["slack"]) != "xoxb-example" {
		t.Fatalf("open: %v %v", creds, err)
	}
	other, _ := NewKey()
	tampered := *sealed
	tampered.Ciphertext = append([]byte(nil), sealed.Ciphertext...)
	tampered.Ciphertext[0] ^= 1
	tb, _ := json.Marshal(&tampered)
	cases := []struct {
		name  string
		key   *Key
		body  []byte
		id    string
		isErr error
	}{
		{"other token id", k, body, "ffffffffffffffffffffffffffffffff", ErrOpen},
		{"other key", other, body, tokenID, ErrOpen},
		{"tampered", k, tb, tokenID, ErrOpen},
		{"unknown field", k, []byte(`{"enc":"","ciphertext":"","x":1}`), tokenID, nil},
		{"not json", k, []byte(`nope`), tokenID, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.key.Open(c.body, c.id)
			if err == nil || (c.isErr != nil && !errors.Is(err, c.isErr)) {
				t.Fatalf("err = %v, want %v", err, c.isErr)
			}
		})
	}
}

func TestParsePlaintext(t *testing.T) {
	for name, in := range map[string]string{
		"empty object":        `{}`,
		"empty value":         `{"a":""}`,
		"too short to redact": `{"a":"1234567"}`,
		"not strings":         `{"a":1}`,
		"duplicate key":       `{"a":"x","a":"y"}`,
		"array":               `["a"]`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePlaintext([]byte(in)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestPublishSignature(t *testing.T) {
	k, _ := NewKey()
	sk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, err := k.Publish(sk)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append([]byte(KeySignatureContext), pub.PublicKey...))
	if !ecdsa.VerifyASN1(&sk.PublicKey, sum[:], pub.Signature) {
		t.Fatal("signature does not verify")
	}
	sum2 := sha256.Sum256(pub.PublicKey)
	if ecdsa.VerifyASN1(&sk.PublicKey, sum2[:], pub.Signature) {
		t.Fatal("signature verifies without the domain separation")
	}
}

func TestStore(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewStore(func() time.Time { return now })
	s.Put(tokenID, "s1", map[string][]byte{"a": []byte("1")}, now.Add(time.Minute))
	if got := s.Get(tokenID, "s1"); string(got["a"]) != "1" {
		t.Fatal("not stored")
	}
	if s.Get(tokenID, "s2") != nil || s.Get("other", "s1") != nil {
		t.Fatal("credentials visible to another session or token")
	}
	s.DropSession("s1")
	if s.Get(tokenID, "s1") != nil {
		t.Fatal("dropped session still has credentials")
	}
	s.Put(tokenID, "s1", map[string][]byte{"a": []byte("1")}, now.Add(time.Minute))
	now = now.Add(2 * time.Minute)
	if s.Get(tokenID, "s1") != nil {
		t.Fatal("expired credentials returned")
	}
}

func FuzzOpen(f *testing.F) {
	k, _ := NewKey()
	sealed, _ := Seal(k.PublicKey(), tokenID, []byte(`{"a":"b"}`))
	b, _ := json.Marshal(sealed)
	f.Add(b)
	f.Add([]byte(`{"enc":"AA==","ciphertext":"AA=="}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		creds, err := k.Open(body, tokenID)
		if err == nil && len(creds) == 0 {
			t.Fatal("opened to nothing")
		}
	})
}

func FuzzParsePlaintext(f *testing.F) {
	f.Add([]byte(`{"a":"b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParsePlaintext(b)
		if err == nil {
			for k, v := range m {
				if k == "" || len(v) == 0 || len(v) > MaxValueLen {
					t.Fatalf("invalid entry accepted: %q", k)
				}
			}
		}
	})
}
