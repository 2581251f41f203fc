package wallet

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The Sign-In With Solana message format, as Phantom and the Solana wallet
// standard (@solana/wallet-standard-util createSignInMessageText) write it:
//
//	${domain} wants you to sign in with your Solana account:
//	${address}
//
//	${statement}
//
//	URI: ${uri}
//	Version: ${version}
//	Chain ID: ${chainId}
//	Nonce: ${nonce}
//	Issued At: ${issuedAt}
//	Expiration Time: ${expirationTime}
//	Not Before: ${notBefore}
//	Request ID: ${requestId}
//	Resources:
//	- ${resources[0]}
//
// The statement paragraph and every field are optional; the fields that
// are present come in this order.
const siwsHeader = " wants you to sign in with your Solana account:"

// MaxSignInMessage bounds a Sign-In With Solana message a parser accepts.
const MaxSignInMessage = 8192

// SignInMessage is a Sign-In With Solana message. Empty strings and zero
// times mean the field is absent.
type SignInMessage struct {
	Domain         string
	Address        Address
	Statement      string
	URI            string
	Version        string
	ChainID        string
	Nonce          string
	IssuedAt       time.Time
	ExpirationTime time.Time
	NotBefore      time.Time
	RequestID      string
	Resources      []string
}

// timeLayout is JavaScript's Date.toISOString, what wallets produce.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// String renders the message in the wallet standard's text format. It is
// what the wallet signs.
func (m *SignInMessage) String() string {
	var b strings.Builder
	b.WriteString(m.Domain)
	b.WriteString(siwsHeader)
	b.WriteString("\n")
	b.WriteString(m.Address.String())
	if m.Statement != "" {
		b.WriteString("\n\n")
		b.WriteString(m.Statement)
	}
	var fields []string
	add := func(name, v string) {
		if v != "" {
			fields = append(fields, name+": "+v)
		}
	}
	addTime := func(name string, t time.Time) {
		if !t.IsZero() {
			fields = append(fields, name+": "+t.UTC().Format(timeLayout))
		}
	}
	add("URI", m.URI)
	add("Version", m.Version)
	add("Chain ID", m.ChainID)
	add("Nonce", m.Nonce)
	addTime("Issued At", m.IssuedAt)
	addTime("Expiration Time", m.ExpirationTime)
	addTime("Not Before", m.NotBefore)
	add("Request ID", m.RequestID)
	if len(m.Resources) > 0 {
		fields = append(fields, "Resources:")
		for _, r := range m.Resources {
			fields = append(fields, "- "+r)
		}
	}
	if len(fields) > 0 {
		b.WriteString("\n\n")
		b.WriteString(strings.Join(fields, "\n"))
	}
	return b.String()
}

// Validate checks field syntax: a domain, printable single-line values, no
// leading or trailing spaces.
func (m *SignInMessage) Validate() error {
	if m.Domain == "" {
		return errors.New("sign-in message: empty domain")
	}
	if m.Address.IsZero() {
		return errors.New("sign-in message: no address")
	}
	for name, v := range map[string]string{
		"domain": m.Domain, "statement": m.Statement, "URI": m.URI, "version": m.Version,
		"chain ID": m.ChainID, "nonce": m.Nonce, "request ID": m.RequestID,
	} {
		if err := checkValue(v); err != nil {
			return fmt.Errorf("sign-in message: %s: %w", name, err)
		}
	}
	if isField(m.Statement) {
		return errors.New("sign-in message: statement looks like a field")
	}
	if strings.ContainsAny(m.Domain, " /") {
		return errors.New("sign-in message: domain contains a space or slash")
	}
	for _, r := range m.Resources {
		if r == "" {
			return errors.New("sign-in message: empty resource")
		}
		if err := checkValue(r); err != nil {
			return fmt.Errorf("sign-in message: resource: %w", err)
		}
	}
	return nil
}

func checkValue(v string) error {
	if strings.TrimSpace(v) != v {
		return errors.New("leading or trailing white space")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return errors.New("control character")
		}
	}
	return nil
}

// ParseSignInMessage parses a Sign-In With Solana message strictly: known
// fields only, in the standard order, each at most once, and nothing left
// over. Parsing does not check the signature or any value against policy.
func ParseSignInMessage(s string) (*SignInMessage, error) {
	if len(s) > MaxSignInMessage {
		return nil, fmt.Errorf("sign-in message: longer than %d bytes", MaxSignInMessage)
	}
	lines := strings.Split(s, "\n")
	m := &SignInMessage{}
	first, ok := strings.CutSuffix(lines[0], siwsHeader)
	if !ok {
		return nil, errors.New("sign-in message: first line is not \"<domain> wants you to sign in with your Solana account:\"")
	}
	m.Domain = first
	if len(lines) < 2 {
		return nil, errors.New("sign-in message: missing address line")
	}
	addr, err := ParseAddress(lines[1])
	if err != nil {
		return nil, fmt.Errorf("sign-in message: %w", err)
	}
	m.Address = addr
	rest := lines[2:]
	if len(rest) == 0 {
		return m, m.Validate()
	}
	// Every further paragraph is introduced by one blank line.
	if len(rest) < 2 || rest[0] != "" {
		return nil, errors.New("sign-in message: want a blank line after the address")
	}
	rest = rest[1:]
	if !isField(rest[0]) {
		m.Statement = rest[0]
		if m.Statement == "" {
			return nil, errors.New("sign-in message: empty statement")
		}
		rest = rest[1:]
		if len(rest) == 0 {
			return m, m.Validate()
		}
		if len(rest) < 2 || rest[0] != "" {
			return nil, errors.New("sign-in message: want a blank line after the statement")
		}
		rest = rest[1:]
	}
	order := []string{"URI", "Version", "Chain ID", "Nonce", "Issued At", "Expiration Time", "Not Before", "Request ID", "Resources"}
	next := 0
	for i := 0; i < len(rest); i++ {
		line := rest[i]
		name, value, ok := strings.Cut(line, ":")
		idx := indexOf(order[next:], name)
		if !ok || idx < 0 {
			return nil, fmt.Errorf("sign-in message: unexpected line %q", truncate(line))
		}
		next += idx + 1
		if name == "Resources" {
			if value != "" {
				return nil, errors.New("sign-in message: text after \"Resources:\"")
			}
			for _, r := range rest[i+1:] {
				v, ok := strings.CutPrefix(r, "- ")
				if !ok {
					return nil, fmt.Errorf("sign-in message: resource line %q does not start with \"- \"", truncate(r))
				}
				m.Resources = append(m.Resources, v)
			}
			if len(m.Resources) == 0 {
				return nil, errors.New("sign-in message: empty resources list")
			}
			break
		}
		v, ok := strings.CutPrefix(value, " ")
		if !ok || v == "" {
			return nil, fmt.Errorf("sign-in message: field %q has no value", name)
		}
		switch name {
		case "URI":
			m.URI = v
		case "Version":
			m.Version = v
		case "Chain ID":
			m.ChainID = v
		case "Nonce":
			m.Nonce = v
		case "Request ID":
			m.RequestID = v
		default:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, fmt.Errorf("sign-in message: %s %q is not an RFC 3339 time", name, truncate(v))
			}
			switch name {
			case "Issued At":
				m.IssuedAt = t
			case "Expiration Time":
				m.ExpirationTime = t
			case "Not Before":
				m.NotBefore = t
			}
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func isField(line string) bool {
	name, _, ok := strings.Cut(line, ":")
	return ok && indexOf([]string{"URI", "Version", "Chain ID", "Nonce", "Issued At", "Expiration Time", "Not Before", "Request ID", "Resources"}, name) >= 0
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
