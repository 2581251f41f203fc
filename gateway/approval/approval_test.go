package approval

import (
	"context"
	"testing"
	"time"
)

func TestBroker(t *testing.T) {
	cases := []struct {
		name   string
		act    func(b *Broker, id string, fire chan time.Time, cancel context.CancelFunc)
		want   Outcome
		wantBy string
	}{
		{"approved", func(b *Broker, id string, _ chan time.Time, _ context.CancelFunc) { b.Decide(id, Approved, "admin") }, Approved, "admin"},
		{"denied", func(b *Broker, id string, _ chan time.Time, _ context.CancelFunc) {
			b.Decide(id, Denied, "admin")
		}, Denied, "admin"},
		{"timed out", func(_ *Broker, _ string, fire chan time.Time, _ context.CancelFunc) { fire <- time.Now() }, TimedOut, ""},
		{"cancelled", func(_ *Broker, _ string, _ chan time.Time, cancel context.CancelFunc) { cancel() }, Cancelled, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fire := make(chan time.Time, 1)
			b := New(&Options{Timeout: time.Minute, After: func(time.Duration) <-chan time.Time { return fire }})
			req, wait := b.Hold(Request{Principal: "alice", Tool: "fs_write"})
			if l := b.List(); len(l) != 1 || l[0].ID != req.ID || !l[0].Expires.Equal(req.Created.Add(time.Minute)) {
				t.Fatalf("list = %+v", l)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c.act(b, req.ID, fire, cancel)
			d := wait(ctx)
			if d.Outcome != c.want || d.By != c.wantBy {
				t.Fatalf("decision %+v, want %s by %q", d, c.want, c.wantBy)
			}
			if len(b.List()) != 0 {
				t.Fatal("request still listed after its outcome")
			}
			if err := b.Decide(req.ID, Approved, "admin"); err != ErrUnknown {
				t.Fatalf("deciding a finished request: %v", err)
			}
		})
	}
}

func TestDecideRejects(t *testing.T) {
	b := New(nil)
	req, _ := b.Hold(Request{Tool: "x"})
	if err := b.Decide(req.ID, TimedOut, "admin"); err == nil {
		t.Fatal("accepted a timeout as a decision")
	}
	if err := b.Decide("nope", Approved, "admin"); err != ErrUnknown {
		t.Fatalf("unknown id: %v", err)
	}
}

// TestDecisionRacesTimeout: a decision recorded just before the timeout
// is observed wins over the timeout.
func TestDecisionRacesTimeout(t *testing.T) {
	fire := make(chan time.Time, 1)
	b := New(&Options{After: func(time.Duration) <-chan time.Time { return fire }})
	req, wait := b.Hold(Request{Tool: "x"})
	if err := b.Decide(req.ID, Approved, "admin"); err != nil {
		t.Fatal(err)
	}
	fire <- time.Now()
	if d := wait(context.Background()); d.Outcome != Approved {
		t.Fatalf("got %s", d.Outcome)
	}
}

// TestCallerSessionCannotApprove: a decision from the session that made the
// call cannot approve it (the request stays pending and an out-of-band
// decision still counts); it may deny it; with CallerMayApprove it may
// approve.
func TestCallerSessionCannotApprove(t *testing.T) {
	b := New(nil)
	req, wait := b.Hold(Request{Tool: "x", Session: "s1"})
	if err := b.DecideInSession(req.ID, Approved, "caller elicitation", "s1"); err != ErrSelfApproval {
		t.Fatalf("self-approval: %v, want ErrSelfApproval", err)
	}
	if err := b.DecideInSession(req.ID, Approved, "caller elicitation", ""); err == nil {
		t.Fatal("accepted a session decision without a session id")
	}
	if l := b.List(); len(l) != 1 {
		t.Fatalf("request no longer pending after a refused self-approval: %+v", l)
	}
	if err := b.Decide(req.ID, Approved, "admin"); err != nil {
		t.Fatal(err)
	}
	if d := wait(context.Background()); d.Outcome != Approved || d.By != "admin" {
		t.Fatalf("decision %+v, want approved by admin", d)
	}

	req, wait = b.Hold(Request{Tool: "x", Session: "s1"})
	if err := b.DecideInSession(req.ID, Denied, "caller elicitation", "s1"); err != nil {
		t.Fatalf("the caller withdrawing its call: %v", err)
	}
	if d := wait(context.Background()); d.Outcome != Denied {
		t.Fatalf("decision %+v, want denied", d)
	}

	req, wait = b.Hold(Request{Tool: "x", Session: "s1", CallerMayApprove: true})
	if err := b.DecideInSession(req.ID, Approved, "caller elicitation", "s1"); err != nil {
		t.Fatalf("opted-in self-approval: %v", err)
	}
	if d := wait(context.Background()); d.Outcome != Approved || d.By != "caller elicitation" {
		t.Fatalf("decision %+v, want approved by caller elicitation", d)
	}
}
