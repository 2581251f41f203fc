package device_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/attest/nitro"
	"github.com/chatmcp/chatmcp/attest/nitro/device"
	"github.com/chatmcp/chatmcp/attest/nitro/internal/fake"
	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"
)

// fakeNSM answers attestation requests like the NSM would, signing with a
// generated chain. No NSM exists outside an enclave, so this stands in for
// the device; the documents it returns go through the real verifier.
type fakeNSM struct {
	t      *testing.T
	ca     *fake.CA
	closed bool
	got    *request.Attestation
	// respond, when set, replaces the normal answer.
	respond func(req *request.Attestation) (response.Response, error)
}

func (f *fakeNSM) Send(req request.Request) (response.Response, error) {
	a, ok := req.(*request.Attestation)
	if !ok {
		f.t.Fatalf("unexpected request %T", req)
	}
	f.got = a
	if f.respond != nil {
		return f.respond(a)
	}
	doc := f.ca.Doc(f.t, fake.With(f.ca.Fields(a.UserData), "nonce", a.Nonce))
	return response.Response{Attestation: &response.Attestation{Document: doc}}, nil
}

func (f *fakeNSM) Close() error { f.closed = true; return nil }

func TestAttest(t *testing.T) {
	ca := fake.NewCA(t, fake.ChainOpts{})
	rd, err := attest.BindReportData(attest.TagNonce, []byte("nonce"))
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeNSM{t: t, ca: ca}
	a := device.NewAttester(&device.Options{Open: func() (device.Session, error) { return s, nil }})
	if a.TEE() != attest.Nitro {
		t.Fatalf("TEE %s", a.TEE())
	}
	ev, err := a.Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	if !s.closed {
		t.Error("session not closed")
	}
	if !bytes.Equal(s.got.UserData, rd[:]) || s.got.Nonce != nil || s.got.PublicKey != nil {
		t.Errorf("request user_data %x nonce %x public_key %x; want the report data only", s.got.UserData, s.got.Nonce, s.got.PublicKey)
	}
	v := nitro.NewVerifier(&nitro.Options{Roots: ca.Roots()})
	c, err := v.Verify(context.Background(), ev, &attest.VerifyOptions{Now: fake.Time()})
	if err != nil {
		t.Fatalf("evidence from the attester rejected: %v", err)
	}
	if !bytes.Equal(c.ReportData, rd[:]) {
		t.Errorf("report data %x, want %x", []byte(c.ReportData), rd)
	}
}

func TestAttestErrors(t *testing.T) {
	ca := fake.NewCA(t, fake.ChainOpts{})
	otherDoc := ca.Doc(t, ca.Fields([]byte("someone else's data")))
	tests := []struct {
		name    string
		open    error
		respond func(*request.Attestation) (response.Response, error)
		want    string
	}{
		{"no device", errors.New("open /dev/nsm: no such file or directory"), nil, "opening the Nitro Secure Module"},
		{"send fails", nil, func(*request.Attestation) (response.Response, error) {
			return response.Response{}, errors.New("ioctl failed")
		}, "ioctl failed"},
		{"device error", nil, func(*request.Attestation) (response.Response, error) {
			return response.Response{Error: response.ECInvalidArgument}, nil
		}, "device error InvalidArgument"},
		{"no document", nil, func(*request.Attestation) (response.Response, error) {
			return response.Response{}, nil
		}, "no document"},
		{"garbage document", nil, func(*request.Attestation) (response.Response, error) {
			return response.Response{Attestation: &response.Attestation{Document: []byte("garbage")}}, nil
		}, "unusable document"},
		{"wrong user_data", nil, func(*request.Attestation) (response.Response, error) {
			return response.Response{Attestation: &response.Attestation{Document: otherDoc}}, nil
		}, "not the requested report data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeNSM{t: t, ca: ca, respond: tt.respond}
			a := device.NewAttester(&device.Options{Open: func() (device.Session, error) {
				if tt.open != nil {
					return nil, tt.open
				}
				return s, nil
			}})
			_, err := a.Attest(context.Background(), [attest.ReportDataSize]byte{1})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if tt.open == nil && !s.closed {
				t.Error("session not closed")
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		a := device.NewAttester(&device.Options{Open: func() (device.Session, error) {
			t.Fatal("opened the device after cancellation")
			return nil, nil
		}})
		if _, err := a.Attest(ctx, [attest.ReportDataSize]byte{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	})
	t.Run("default opens /dev/nsm", func(t *testing.T) {
		_, err := device.NewAttester(nil).Attest(context.Background(), [attest.ReportDataSize]byte{})
		if err == nil {
			t.Skip("a real NSM is present")
		}
		if !strings.Contains(err.Error(), "opening the Nitro Secure Module") {
			t.Fatalf("error %v", err)
		}
	})
}
