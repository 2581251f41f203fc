package relay

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/go-json-experiment/json"
)

func (s *Server) handleSend(w http.ResponseWriter, r *http.Request, sess *session) {
	var req relayapi.SendRequest
	if err := s.edge.DecodeJSON(r, relayapi.MaxSendBody, &req); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	resp, recipients, err := s.send(r.Context(), &req, sess)
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	s.hub.wake(recipients)
	s.opts.Metrics.MessageStored(len(recipients))
	edge.WriteJSON(w, http.StatusCreated, resp)
}

// send parses and verifies the envelope, then in one transaction checks
// membership and epoch, consent and stamps for every recipient, and stores
// the envelope and its deliveries. On any error nothing is stored.
func (s *Server) send(ctx context.Context, req *relayapi.SendRequest, sess *session) (*relayapi.SendResponse, []string, error) {
	if len(req.Envelope) == 0 {
		return nil, nil, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadRequest, "malformed request: no envelope")
	}
	env, err := envelope.Parse(req.Envelope)
	if err != nil {
		return nil, nil, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadEnvelope, "%v", err)
	}
	if err := env.Verify(); err != nil {
		return nil, nil, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadEnvelope, "%v", err)
	}
	if !env.Sender.Wallet.Equal(sess.wallet) || env.Sender.Device != sess.device {
		return nil, nil, edge.Errorf(http.StatusForbidden, relayapi.ReasonWrongSigner, "envelope sender is not this session's device")
	}
	now := s.opts.Now()
	if d := now.UnixMilli() - env.SentAt; d > s.opts.MaxSkew.Milliseconds() || -d > s.opts.MaxSkew.Milliseconds() {
		return nil, nil, edge.Errorf(http.StatusBadRequest, relayapi.ReasonClockSkew, "envelope time is more than %s from the relay's clock", s.opts.MaxSkew)
	}
	stamps, err := parseStamps(req.Stamps)
	if err != nil {
		return nil, nil, err
	}
	if err := s.settlePayments(ctx, stamps, sess.wallet, env.Conversation, env.Hash()); err != nil {
		return nil, nil, err
	}
	// The envelope JSON is stored as received, after the checks above; it
	// holds ciphertext, wrapped keys and signatures only.
	raw := bytes.Clone(req.Envelope)
	hash := env.Hash()
	var resp relayapi.SendResponse
	var recipients []string
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		recipients = recipients[:0]
		if s.db.Dialect == store.Postgres {
			// Deliveries commit in sequence order, so a reader at cursor N
			// never skips a row that commits later with a smaller seq.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(4243)`); err != nil {
				return err
			}
		}
		// Sessions end on revocation, but one may have been checked just
		// before a revocation committed: check the device itself here.
		var revoked int64
		if err := tx.QueryRow(ctx, `SELECT revoked FROM relay_devices WHERE wallet = ? AND device = ?`, sess.wallet.String(), sess.device).Scan(&revoked); err != nil {
			return err
		}
		if revoked != 0 {
			return edge.Errorf(http.StatusForbidden, relayapi.ReasonDeviceRevoked, "device %s was revoked", sess.device)
		}
		var epoch int64
		var membersHash []byte
		err := tx.QueryRow(ctx, `SELECT epoch, members_hash FROM relay_conversations WHERE id = ?`, env.Conversation).Scan(&epoch, &membersHash)
		if errors.Is(err, sql.ErrNoRows) {
			return edge.Errorf(http.StatusNotFound, relayapi.ReasonUnknownConversation, "unknown conversation %s", env.Conversation)
		}
		if err != nil {
			return err
		}
		members, err := currentMembers(ctx, tx, env.Conversation)
		if err != nil {
			return err
		}
		if !containsAddr(members, sess.wallet.String()) {
			if _, err := s.participant(ctx, tx, env.Conversation, sess); err != nil {
				return err
			}
			return edge.Errorf(http.StatusForbidden, relayapi.ReasonNotMember, "you are not a member of conversation %s", env.Conversation)
		}
		if uint64(epoch) != env.Epoch || !bytes.Equal(membersHash, env.MembersHash) {
			return edge.Errorf(http.StatusConflict, relayapi.ReasonEpochChanged, "conversation %s membership changed (epoch %d); refresh and resend", env.Conversation, epoch)
		}
		type delivery struct{ to, folder string }
		deliveries := []delivery{{sess.wallet.String(), relayapi.FolderInbox}}
		var needed []relayapi.StampNeeded
		for _, m := range members {
			if m == sess.wallet.String() {
				continue
			}
			state, err := consentState(ctx, tx, m, sess.wallet.String())
			if err != nil {
				return err
			}
			if state == envelope.Allowed {
				deliveries = append(deliveries, delivery{m, relayapi.FolderInbox})
				continue
			}
			addr, err := wallet.ParseAddress(m)
			if err != nil {
				return err
			}
			n, err := s.checkStamp(ctx, tx, addr, sess.wallet, stamps, hash)
			if err != nil {
				return err
			}
			if n != nil {
				needed = append(needed, *n)
				continue
			}
			// Denied senders pay like strangers and are then dropped, so
			// the sender cannot tell a denial from an unanswered request.
			if state != envelope.Denied {
				deliveries = append(deliveries, delivery{m, relayapi.FolderRequests})
			}
		}
		if err := stampRequired(needed, "%d recipient(s) have not allowed you"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO relay_messages (id, conversation, sender, envelope, stored) VALUES (?, ?, ?, ?, ?)`,
			env.ID, env.Conversation, sess.wallet.String(), raw, now.UnixMilli()); err != nil {
			if store.IsUniqueViolation(err) {
				return edge.Errorf(http.StatusConflict, relayapi.ReasonReplay, "message %s was already sent (replay)", env.ID)
			}
			return err
		}
		for _, d := range deliveries {
			var seq int64
			if err := tx.QueryRow(ctx, `INSERT INTO relay_deliveries (recipient, message, conversation, sender, folder) VALUES (?, ?, ?, ?, ?) RETURNING seq`,
				d.to, env.ID, env.Conversation, sess.wallet.String(), d.folder).Scan(&seq); err != nil {
				return err
			}
			if d.to == sess.wallet.String() {
				resp.Seq = seq
			}
			recipients = append(recipients, d.to)
		}
		return notify(ctx, tx, recipients)
	})
	if err != nil {
		return nil, nil, err
	}
	resp.ID = env.ID
	return &resp, recipients, nil
}

// parseStamps checks the form of the stamps a request carries, by address.
func parseStamps(in map[string]stamp.Stamp) (map[wallet.Address]stamp.Stamp, error) {
	stamps := make(map[wallet.Address]stamp.Stamp, len(in))
	for a, st := range in {
		addr, err := wallet.ParseAddress(a)
		if err != nil {
			return nil, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadStamp, "stamp for %v", err)
		}
		if err := st.Validate(); err != nil {
			return nil, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadStamp, "stamp for %s: %v", a, err)
		}
		stamps[addr] = st
	}
	return stamps, nil
}

// consentState is recipient's decision about peer: envelope.Allowed,
// envelope.Denied or "" (none).
func consentState(ctx context.Context, q querier, recipient, peer string) (string, error) {
	var state string
	err := q.QueryRow(ctx, `SELECT state FROM relay_consent WHERE wallet = ? AND peer = ?`, recipient, peer).Scan(&state)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	return state, nil
}

// checkStamp verifies the stamp sender attached for recipient over hash
// (an envelope's or an op's), at the recipient's difficulty. With no stamp
// it returns what is needed; a stamp that fails is a refusal.
func (s *Server) checkStamp(ctx context.Context, q querier, recipient, sender wallet.Address, stamps map[wallet.Address]stamp.Stamp, hash [32]byte) (*relayapi.StampNeeded, error) {
	bits, err := s.difficulty(ctx, q, recipient.String())
	if err != nil {
		return nil, err
	}
	st, ok := stamps[recipient]
	if !ok {
		n := &relayapi.StampNeeded{Recipient: recipient, Bits: bits}
		if s.opts.Payments != nil {
			price, err := s.price(ctx, q, recipient.String())
			if err != nil {
				return nil, err
			}
			if price != nil && s.opts.Payments.CheckPrice(price) == nil {
				n.Payment = stamp.Requirements(stamp.Input{Recipient: recipient, Sender: sender, Message: hash}, price, s.opts.Payments.FeePayer)
			}
		}
		return n, nil
	}
	switch st.Kind {
	case kindSettled:
		return nil, nil // settled by settlePayments before this transaction
	case stamp.KindX402:
		return nil, edge.Errorf(http.StatusPaymentRequired, relayapi.ReasonStampKind, "stamp for %s: payment stamps pay for direct messages only; use proof of work", recipient)
	}
	v := s.opts.Stamps[st.Kind]
	if v == nil {
		return nil, edge.Errorf(http.StatusPaymentRequired, relayapi.ReasonStampKind, "stamp for %s: kind %q is not accepted by this relay", recipient, st.Kind)
	}
	in := stamp.Input{Recipient: recipient, Sender: sender, Message: hash}
	if err := v.Verify(ctx, &st, in, stamp.Requirement{Bits: bits}); err != nil {
		return nil, edge.Errorf(http.StatusPaymentRequired, relayapi.ReasonStampRejected, "stamp for %s rejected: %v", recipient, err)
	}
	return nil, nil
}

// kindSettled marks, in a request's parsed stamps, a payment stamp that
// settlePayments has settled; it never comes from the wire (parseStamps
// accepts only stamp.Validate's kinds).
const kindSettled = "x402-settled"

// settlePayments settles the payment stamps of a message before the
// transaction that stores it, so that no database transaction waits on
// the chain and a retried transaction never settles twice. A payment is
// settled only for a recipient who set a price and has not allowed the
// sender; the facilitator's ledger refuses a replayed payment, and its
// memo binds this message. A settled stamp is replaced by kindSettled.
// A payment settles before the message is stored: a message then refused
// (a concurrent membership change) is not refunded; the client paid only
// after a 402 for this very envelope.
func (s *Server) settlePayments(ctx context.Context, stamps map[wallet.Address]stamp.Stamp, sender wallet.Address, conversation string, hash [32]byte) error {
	var members []string
	for addr, st := range stamps {
		if st.Kind != stamp.KindX402 {
			continue
		}
		if s.opts.Payments == nil {
			return edge.Errorf(http.StatusPaymentRequired, relayapi.ReasonStampKind, "stamp for %s: kind %q is not accepted by this relay", addr, st.Kind)
		}
		if members == nil {
			var err error
			if members, err = currentMembers(ctx, s.db, conversation); err != nil {
				return err
			}
		}
		if !containsAddr(members, addr.String()) {
			delete(stamps, addr) // not a recipient of this message: never settle it
			continue
		}
		state, err := consentState(ctx, s.db, addr.String(), sender.String())
		if err != nil {
			return err
		}
		if state == envelope.Allowed {
			delete(stamps, addr) // not needed: never charge it
			continue
		}
		price, err := s.price(ctx, s.db, addr.String())
		if err != nil {
			return err
		}
		if price != nil && s.opts.Payments.CheckPrice(price) != nil {
			price = nil // set under other rules of this relay: not payable now
		}
		in := stamp.Input{Recipient: addr, Sender: sender, Message: hash}
		if err := s.opts.Payments.Verify(ctx, &st, in, stamp.Requirement{Price: price}); err != nil {
			return edge.Errorf(http.StatusPaymentRequired, relayapi.ReasonStampRejected, "stamp for %s rejected: %v", addr, err)
		}
		stamps[addr] = stamp.Stamp{Kind: kindSettled}
	}
	return nil
}

// price is addr's price for strangers, or nil.
func (s *Server) price(ctx context.Context, q querier, addr string) (*stamp.Price, error) {
	var raw string
	err := q.QueryRow(ctx, `SELECT price FROM relay_users WHERE wallet = ?`, addr).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && raw == "") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p stamp.Price
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// stampRequired is the 402 naming who needs a stamp, or nil when nobody
// does. what describes them, with one %d for their number.
func stampRequired(needed []relayapi.StampNeeded, what string) error {
	if len(needed) == 0 {
		return nil
	}
	e := edge.Errorf(http.StatusPaymentRequired, relayapi.ReasonStampRequired, "stamp required: "+what, len(needed))
	e.Body = relayapi.Error{ErrorBody: edge.ErrorBody{Error: e.Msg, Reason: e.Reason}, Stamps: needed}
	return e
}

// notify tells other replicas which recipients have new deliveries. Each
// payload stays under PostgreSQL's 8000-byte limit.
func notify(ctx context.Context, tx *store.Tx, recipients []string) error {
	for i := 0; i < len(recipients); i += 100 {
		end := min(i+100, len(recipients))
		if err := tx.Notify(ctx, notifyChannel, strings.Join(recipients[i:end], ",")); err != nil {
			return err
		}
	}
	return nil
}

func currentMembers(ctx context.Context, q querier, id string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT wallet FROM relay_members WHERE conversation = ? AND current = 1`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func containsAddr(list []string, a string) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request, sess *session) {
	q := r.URL.Query()
	var after int64
	limit := 100
	var err error
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadRequest, "after: not a cursor"))
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > relayapi.MaxPageSize {
			s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadRequest, "limit: want 1 to %d", relayapi.MaxPageSize))
			return
		}
	}
	folder := q.Get("folder")
	if folder != "" && folder != relayapi.FolderInbox && folder != relayapi.FolderRequests {
		s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadRequest, "folder: want inbox or requests"))
		return
	}
	conv := q.Get("conversation")
	if conv != "" {
		if !envelope.ValidID(conv) {
			s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadID, "conversation ID is not 32 lowercase hex characters"))
			return
		}
		if _, err := s.participant(r.Context(), s.db, conv, sess); err != nil {
			s.edge.WriteError(w, r, err)
			return
		}
	}
	page, err := s.page(r.Context(), sess.wallet.String(), after, limit, folder, conv)
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, page)
}

// page reads a recipient's deliveries after the cursor, oldest first.
func (s *Server) page(ctx context.Context, recipient string, after int64, limit int, folder, conv string) (*relayapi.MessagesResponse, error) {
	query := `SELECT d.seq, d.folder, d.sender, m.envelope FROM relay_deliveries d JOIN relay_messages m ON m.id = d.message
		WHERE d.recipient = ? AND d.seq > ?`
	args := []any{recipient, after}
	if folder != "" {
		query += ` AND d.folder = ?`
		args = append(args, folder)
	}
	if conv != "" {
		query += ` AND d.conversation = ?`
		args = append(args, conv)
	}
	query += ` ORDER BY d.seq LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	resp := &relayapi.MessagesResponse{Messages: []relayapi.Message{}, Next: after}
	for rows.Next() {
		var m relayapi.Message
		var sender string
		var raw []byte
		if err := rows.Scan(&m.Seq, &m.Folder, &sender, &raw); err != nil {
			return nil, err
		}
		if m.Sender, err = wallet.ParseAddress(sender); err != nil {
			return nil, err
		}
		m.Envelope = raw
		resp.Messages = append(resp.Messages, m)
		resp.Next = m.Seq
	}
	return resp, rows.Err()
}

func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request, sess *session) {
	var req relayapi.ConsentRequest
	if err := s.edge.DecodeJSON(r, relayapi.MaxSmallBody, &req); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	u := &req.Update
	if err := u.Verify(); err != nil {
		s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadConsent, "%v", err))
		return
	}
	if !u.Signer.Wallet.Equal(sess.wallet) || u.Signer.Device != sess.device {
		s.edge.WriteError(w, r, edge.Errorf(http.StatusForbidden, relayapi.ReasonWrongSigner, "consent update not signed by this session's device"))
		return
	}
	raw, _ := json.Marshal(u)
	me, peer := sess.wallet.String(), u.Peer.String()
	ctx := r.Context()
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE relay_consent SET state = ?, update_json = ? WHERE wallet = ? AND peer = ?`, u.State, raw, me, peer)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO relay_consent (wallet, peer, state, update_json) VALUES (?, ?, ?, ?)`, me, peer, u.State, raw); err != nil {
				return err
			}
		}
		if u.State == envelope.Allowed {
			_, err = tx.Exec(ctx, `UPDATE relay_deliveries SET folder = ? WHERE recipient = ? AND sender = ? AND folder = ?`,
				relayapi.FolderInbox, me, peer, relayapi.FolderRequests)
		} else {
			_, err = tx.Exec(ctx, `DELETE FROM relay_deliveries WHERE recipient = ? AND sender = ? AND folder = ?`,
				me, peer, relayapi.FolderRequests)
		}
		return err
	})
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) handleSettings(w http.ResponseWriter, r *http.Request, sess *session) {
	var req relayapi.SettingsRequest
	if err := s.edge.DecodeJSON(r, relayapi.MaxSmallBody, &req); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	if req.Difficulty < 0 || req.Difficulty > stamp.MaxBits {
		s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadDifficulty, "difficulty %d out of range 0-%d", req.Difficulty, stamp.MaxBits))
		return
	}
	setPrice := req.Price != nil || req.NoPrice
	var price string
	if req.Price != nil {
		if req.NoPrice {
			s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadPrice, "price and no_price together"))
			return
		}
		if s.opts.Payments == nil {
			s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonNoPayments, "this relay takes no payments (no facilitator configured)"))
			return
		}
		if err := s.opts.Payments.CheckPrice(req.Price); err != nil {
			s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadPrice, "%v", err))
			return
		}
		b, _ := json.Marshal(req.Price)
		price = string(b)
	}
	ctx := r.Context()
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE relay_users SET difficulty = ? WHERE wallet = ?`, req.Difficulty, sess.wallet.String())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err = tx.Exec(ctx, `INSERT INTO relay_users (wallet, difficulty) VALUES (?, ?)`, sess.wallet.String(), req.Difficulty); err != nil {
				return err
			}
		}
		if setPrice {
			_, err = tx.Exec(ctx, `UPDATE relay_users SET price = ? WHERE wallet = ?`, price, sess.wallet.String())
		}
		return err
	})
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, struct{}{})
}
