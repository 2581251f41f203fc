package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/wallet"
)

// pageSize is how many messages a conversation page shows.
const pageSize = 50

func (s *Server) routeChat(w http.ResponseWriter, r *http.Request, sess *session, u *user) {
	p, m := r.URL.Path, r.Method
	switch {
	case p == "/" && m == http.MethodGet:
		s.inbox(w, r, sess, u, "")
	case p == "/events" && m == http.MethodGet:
		s.events(w, r, sess, u)
	case p == "/requests" && m == http.MethodGet:
		s.requests(w, r, sess, u, "")
	case (p == "/requests/allow" || p == "/requests/deny") && m == http.MethodPost:
		s.consent(w, r, sess, u, p == "/requests/allow")
	case p == "/dm" && m == http.MethodPost:
		s.sendDM(w, r, sess, u)
	case p == "/group" && m == http.MethodPost:
		s.createGroup(w, r, sess, u)
	case strings.HasPrefix(p, "/c/"):
		rest := strings.Split(strings.TrimPrefix(p, "/c/"), "/")
		id := rest[0]
		if !envelope.ValidID(id) {
			http.NotFound(w, r)
			return
		}
		action := strings.Join(rest[1:], "/")
		switch {
		case action == "" && m == http.MethodGet:
			s.conversation(w, r, sess, u, id, "")
		case action == "send" && m == http.MethodPost:
			s.send(w, r, sess, u, id)
		case action == "seen" && m == http.MethodPost:
			seq, _ := strconv.ParseInt(r.PostFormValue("seq"), 10, 64)
			u.markRead(id, seq)
			w.WriteHeader(http.StatusNoContent)
		case (action == "members/add" || action == "members/remove") && m == http.MethodPost:
			s.changeMembers(w, r, sess, u, id, action == "members/add")
		default:
			s.routeAgent(w, r, sess, u, id, action)
		}
	default:
		http.NotFound(w, r)
	}
}

type convSummary struct {
	ID      string
	Kind    string
	Title   string
	Members int
	Unread  int
	Problem string
}

type inboxData struct {
	Conversations []convSummary
	Requests      int
}

// describe names a conversation for a list: the peer of a direct
// conversation, the member count of a group.
func describe(ctx context.Context, c *chat.Client, id string) convSummary {
	cs := convSummary{ID: id}
	st, err := c.Membership(ctx, id)
	if err != nil {
		cs.Problem = "membership could not be verified: " + err.Error()
		cs.Title = id
		return cs
	}
	cs.Kind, cs.Members = st.Kind, len(st.Members)
	if st.Kind == envelope.KindDM {
		for _, m := range st.Members {
			if !m.Equal(c.Address()) {
				cs.Title = m.String()
			}
		}
	} else {
		cs.Title = fmt.Sprintf("Group of %d, created by %s", len(st.Members), shortAddr(st.Creator))
	}
	return cs
}

func (s *Server) inbox(w http.ResponseWriter, r *http.Request, sess *session, u *user, errMsg string) {
	after := u.seen()
	var d inboxData
	unread := u.unreadCounts()
	err := u.client(func(c *chat.Client) error {
		inbox, requests, err := c.Conversations(r.Context())
		if err != nil {
			return err
		}
		d.Requests = len(requests)
		for _, id := range inbox {
			cs := describe(r.Context(), c, id)
			cs.Unread = unread[id]
			d.Conversations = append(d.Conversations, cs)
		}
		return nil
	})
	if err != nil && errMsg == "" {
		errMsg = friendly(err)
	}
	if errMsg != "" {
		w.WriteHeader(http.StatusBadGateway)
	}
	s.renderPage(w, sess, "inbox", &page{Title: "Inbox", Error: errMsg, Data: d, After: after})
}

// friendly words an error for a person.
func friendly(err error) string {
	switch {
	case chat.IsReason(err, relayapi.ReasonSessionExpired, relayapi.ReasonUnauthorized) || strings.Contains(err.Error(), "sign-in"):
		return "The relay session ended and this wallet signs in only through the browser: sign out and sign in again. (" + err.Error() + ")"
	case errors.Is(err, chat.ErrNotPermitted):
		return "Not permitted: " + err.Error()
	}
	return err.Error()
}

type msgView struct {
	Seq     int64
	Sender  string
	Mine    bool
	SentAt  time.Time
	Text    string
	State   string
	Problem string
	Folder  string
	Agent   *structured // an assistant message (agent.go)
	// CSRF and Conversation are for the forms of an approval request.
	CSRF, Conversation string
}

func view(m chat.Message, self wallet.Address) msgView {
	v := msgView{Seq: m.Seq, Sender: m.Sender.String(), Mine: m.Sender.Equal(self), SentAt: m.SentAt, Text: m.Text, Folder: m.Folder}
	v.State, v.Problem = messageState(m)
	decorate(&v, m)
	return v
}

type requestView struct {
	Conversation string
	Sender       string
	Messages     []msgView
}

type requestsData struct {
	Requests   []requestView
	Difficulty int
}

func (s *Server) requests(w http.ResponseWriter, r *http.Request, sess *session, u *user, errMsg string) {
	var d requestsData
	err := u.client(func(c *chat.Client) error {
		me, err := c.User(r.Context(), c.Address())
		if err != nil {
			return err
		}
		d.Difficulty = me.Difficulty
		msgs, err := c.ReadAll(r.Context(), chat.ReadOptions{Folder: relayapi.FolderRequests})
		if err != nil {
			return err
		}
		by := map[string]int{}
		for _, m := range msgs {
			i, ok := by[m.Conversation]
			if !ok {
				i = len(d.Requests)
				by[m.Conversation] = i
				d.Requests = append(d.Requests, requestView{Conversation: m.Conversation, Sender: m.Sender.String()})
			}
			d.Requests[i].Messages = append(d.Requests[i].Messages, view(m, c.Address()))
		}
		return nil
	})
	if err != nil && errMsg == "" {
		errMsg = friendly(err)
	}
	if errMsg != "" {
		w.WriteHeader(http.StatusBadRequest)
	}
	s.renderPage(w, sess, "requests", &page{Title: "Requests", Error: errMsg, Data: d})
}

func (s *Server) consent(w http.ResponseWriter, r *http.Request, sess *session, u *user, allow bool) {
	peer, err := wallet.ParseAddress(strings.TrimSpace(r.PostFormValue("peer")))
	if err != nil {
		s.requests(w, r, sess, u, "Not a wallet address: "+err.Error())
		return
	}
	err = u.client(func(c *chat.Client) error {
		if allow {
			return c.Allow(r.Context(), peer)
		}
		return c.Deny(r.Context(), peer)
	})
	if err != nil {
		s.requests(w, r, sess, u, friendly(err))
		return
	}
	if allow {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/requests", http.StatusSeeOther)
}

func (s *Server) sendDM(w http.ResponseWriter, r *http.Request, sess *session, u *user) {
	to, err := wallet.ParseAddress(strings.TrimSpace(r.PostFormValue("to")))
	if err != nil {
		s.inbox(w, r, sess, u, "The recipient is not a wallet address: "+err.Error())
		return
	}
	text := r.PostFormValue("text")
	if strings.TrimSpace(text) == "" {
		s.inbox(w, r, sess, u, "Write a message first.")
		return
	}
	var sent *chat.Sent
	err = u.client(func(c *chat.Client) (err error) {
		sent, err = c.SendDM(r.Context(), to, text)
		return err
	})
	if err != nil {
		s.inbox(w, r, sess, u, friendly(err))
		return
	}
	http.Redirect(w, r, "/c/"+sent.Conversation+sentNote(sent), http.StatusSeeOther)
}

func sentNote(sent *chat.Sent) string {
	if len(sent.Requested) > 0 {
		return "?requested=1"
	}
	return ""
}

func parseMembers(s string) ([]wallet.Address, error) {
	var out []wallet.Address
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		a, err := wallet.ParseAddress(f)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("name at least one member")
	}
	return out, nil
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request, sess *session, u *user) {
	members, err := parseMembers(r.PostFormValue("members"))
	if err != nil {
		s.inbox(w, r, sess, u, "Members: "+err.Error())
		return
	}
	var id string
	err = u.client(func(c *chat.Client) (err error) {
		id, err = c.CreateGroup(r.Context(), members)
		return err
	})
	if err != nil {
		s.inbox(w, r, sess, u, friendly(err))
		return
	}
	http.Redirect(w, r, "/c/"+id, http.StatusSeeOther)
}

type conversationData struct {
	ID        string
	Kind      string
	Title     string
	Creator   string
	IsCreator bool
	Members   []string
	Messages  []msgView
	Earlier   int64 // cursor for the previous page; 0: none
	Later     bool
	Requested bool
	Agent     any // the assistant section (agent.go)
}

func (s *Server) conversation(w http.ResponseWriter, r *http.Request, sess *session, u *user, id, errMsg string) {
	after := u.seen()
	d := conversationData{ID: id, Requested: r.URL.Query().Get("requested") == "1"}
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	var last int64
	err := u.client(func(c *chat.Client) error {
		st, err := c.Membership(r.Context(), id)
		if err != nil {
			return err
		}
		sum := describe(r.Context(), c, id)
		d.Kind, d.Title, d.Creator = st.Kind, sum.Title, st.Creator.String()
		d.IsCreator = st.Creator.Equal(c.Address()) && st.Kind == envelope.KindGroup
		for _, m := range st.Members {
			d.Members = append(d.Members, m.String())
		}
		msgs, err := c.ReadAll(r.Context(), chat.ReadOptions{Conversation: id})
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			last = msgs[len(msgs)-1].Seq
		}
		if before > 0 {
			i := slices.IndexFunc(msgs, func(m chat.Message) bool { return m.Seq >= before })
			if i >= 0 {
				msgs = msgs[:i]
				d.Later = true
			}
		}
		if len(msgs) > pageSize {
			msgs = msgs[len(msgs)-pageSize:]
			d.Earlier = msgs[0].Seq
		}
		pending := map[string]bool{}
		if l, err := c.ApprovalRequests(r.Context(), id, s.opts.Now()); err == nil {
			for _, a := range l {
				pending[a.ID] = true
			}
		}
		for _, m := range msgs {
			v := view(m, c.Address())
			v.CSRF, v.Conversation = sess.csrf, id
			if v.Agent != nil && v.Agent.Approval != nil {
				v.Agent.Pending = pending[v.Agent.Approval.ID]
			}
			d.Messages = append(d.Messages, v)
		}
		return nil
	})
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		s.renderPage(w, sess, "conversation", &page{Title: "Conversation", Error: friendly(err), Data: d})
		return
	}
	if before == 0 {
		u.markRead(id, last)
	}
	av := s.agentSection(r.Context(), u, id)
	d.Agent = av
	// An approval request is offered for a decision only from a member
	// whose agent evidence passes the policy: anyone can post the message
	// (and name a gateway); decide refuses the others too.
	for i := range d.Messages {
		if ag := d.Messages[i].Agent; ag != nil && ag.Approval != nil && !av.verified(d.Messages[i].Sender) {
			ag.Pending, ag.Unverified = false, true
		}
	}
	if errMsg != "" {
		w.WriteHeader(http.StatusBadRequest)
	}
	s.renderPage(w, sess, "conversation", &page{Title: d.Title, Error: errMsg, Data: d, After: after})
}

func (s *Server) send(w http.ResponseWriter, r *http.Request, sess *session, u *user, id string) {
	text := r.PostFormValue("text")
	if strings.TrimSpace(text) == "" {
		s.conversation(w, r, sess, u, id, "Write a message first.")
		return
	}
	var sent *chat.Sent
	err := u.client(func(c *chat.Client) (err error) {
		st, err := c.Membership(r.Context(), id)
		if err != nil {
			return err
		}
		if st.Kind == envelope.KindDM {
			for _, m := range st.Members {
				if !m.Equal(c.Address()) {
					sent, err = c.SendDM(r.Context(), m, text)
					return err
				}
			}
		}
		sent, err = c.Send(r.Context(), id, text)
		return err
	})
	if err != nil {
		s.conversation(w, r, sess, u, id, friendly(err))
		return
	}
	http.Redirect(w, r, "/c/"+id+sentNote(sent), http.StatusSeeOther)
}

func (s *Server) changeMembers(w http.ResponseWriter, r *http.Request, sess *session, u *user, id string, add bool) {
	member, err := wallet.ParseAddress(strings.TrimSpace(r.PostFormValue("member")))
	if err != nil {
		s.conversation(w, r, sess, u, id, "Not a wallet address: "+err.Error())
		return
	}
	err = u.client(func(c *chat.Client) error {
		if add {
			return c.AddMember(r.Context(), id, member)
		}
		return c.RemoveMember(r.Context(), id, member)
	})
	if err != nil {
		s.conversation(w, r, sess, u, id, friendly(err))
		return
	}
	http.Redirect(w, r, "/c/"+id, http.StatusSeeOther)
}

// events streams the user's live updates as server-sent events.
func (s *Server) events(w http.ResponseWriter, r *http.Request, sess *session, u *user) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	ch, done := u.subscribe(after)
	defer done()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": ready\n\n")
	fl.Flush()
	ping := time.NewTicker(25 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-ping.C:
			// An open page is activity; a session past its lifetime
			// ends its stream too.
			if !s.touch(sess) {
				return
			}
			fmt.Fprint(w, ": ping\n\n")
			fl.Flush()
		case ev := <-ch:
			b, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			fmt.Fprintf(w, "event: message\ndata: %s\n\n", b)
			fl.Flush()
		}
	}
}
