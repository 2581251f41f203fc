package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"

	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/go-json-experiment/json"
)

func (s *Server) checkSigner(op *envelope.Op, sess *session) error {
	if !op.Signer.Wallet.Equal(sess.wallet) || op.Signer.Device != sess.device {
		return edge.Errorf(http.StatusForbidden, relayapi.ReasonWrongSigner, "membership op not signed by this session's device")
	}
	return nil
}

// opRefused maps an Apply failure to a refusal: an ID not derived as the
// kind requires (DM squatting) has its own reason.
func opRefused(status int, reason string, err error) error {
	if errors.Is(err, envelope.ErrConversationID) {
		return edge.Errorf(http.StatusBadRequest, relayapi.ReasonConversationID, "%v", err)
	}
	return edge.Errorf(status, reason, "%v", err)
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, sess *session) {
	var req relayapi.OpRequest
	if err := s.edge.DecodeJSON(r, relayapi.MaxSmallBody, &req); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	op := &req.Op
	// Apply enforces what a conversation may be: a direct conversation is
	// exactly its two members at DMID, a group's ID derives from its
	// creator and nonce. So nothing but the real direct conversation can
	// ever exist at a DM ID.
	conv, err := envelope.Apply(nil, op)
	if err != nil {
		s.edge.WriteError(w, r, opRefused(http.StatusBadRequest, relayapi.ReasonBadOp, err))
		return
	}
	if err := s.checkSigner(op, sess); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	stamps, err := parseStamps(req.Stamps)
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	raw, _ := json.Marshal(op)
	ctx := r.Context()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM relay_conversations WHERE id = ?`, conv.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return edge.Errorf(http.StatusConflict, relayapi.ReasonConversationExists, "conversation %s already exists", conv.ID)
		}
		if err := s.admitMembers(ctx, tx, nil, conv, op, stamps); err != nil {
			return err
		}
		return s.storeOp(ctx, tx, conv, raw, true)
	})
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusCreated, relayapi.ConversationResponse{ID: conv.ID, Ops: []envelope.Op{*op}})
}

// admitMembers applies the consent and stamp rules of a first message to
// the members a group op adds: each who has not allowed the group's
// creator needs a stamp bound to the op (a denied creator pays too, so it
// cannot tell). The group then shows in their requests until they allow
// the creator (see handleConversations). A direct conversation's creation
// needs none: its first message pays.
func (s *Server) admitMembers(ctx context.Context, tx *store.Tx, cur, next *envelope.Conversation, op *envelope.Op, stamps map[wallet.Address]stamp.Stamp) error {
	if next.Kind != envelope.KindGroup {
		return nil
	}
	hash := op.Hash()
	var needed []relayapi.StampNeeded
	for _, m := range next.Members {
		if m.Equal(next.Creator) || (cur != nil && cur.IsMember(m)) {
			continue
		}
		state, err := consentState(ctx, tx, m.String(), next.Creator.String())
		if err != nil {
			return err
		}
		if state == envelope.Allowed {
			continue
		}
		n, err := s.checkStamp(ctx, tx, m, next.Creator, stamps, hash)
		if err != nil {
			return err
		}
		if n != nil {
			needed = append(needed, *n)
		}
	}
	return stampRequired(needed, "adding %d member(s) who have not allowed you to a group")
}

func (s *Server) storeOp(ctx context.Context, tx *store.Tx, conv *envelope.Conversation, raw []byte, create bool) error {
	if create {
		if _, err := tx.Exec(ctx, `INSERT INTO relay_conversations (id, kind, creator, epoch, members_hash) VALUES (?, ?, ?, ?, ?)`,
			conv.ID, conv.Kind, conv.Creator.String(), conv.Epoch, conv.MembersHash()); err != nil {
			return err
		}
	} else if _, err := tx.Exec(ctx, `UPDATE relay_conversations SET epoch = ?, members_hash = ? WHERE id = ?`,
		conv.Epoch, conv.MembersHash(), conv.ID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO relay_ops (conversation, epoch, op) VALUES (?, ?, ?)`, conv.ID, conv.Epoch, raw); err != nil {
		if store.IsUniqueViolation(err) {
			return edge.Errorf(http.StatusConflict, relayapi.ReasonConflict, "conversation %s changed concurrently; retry", conv.ID)
		}
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE relay_members SET current = 0 WHERE conversation = ?`, conv.ID); err != nil {
		return err
	}
	for _, m := range conv.Members {
		res, err := tx.Exec(ctx, `UPDATE relay_members SET current = 1 WHERE conversation = ? AND wallet = ?`, conv.ID, m.String())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO relay_members (conversation, wallet, current) VALUES (?, ?, 1)`, conv.ID, m.String()); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadConversation replays and re-verifies a conversation's ops.
func (s *Server) loadConversation(ctx context.Context, q querier, id string) (*envelope.Conversation, []envelope.Op, error) {
	rows, err := q.Query(ctx, `SELECT op FROM relay_ops WHERE conversation = ? ORDER BY epoch`, id)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var conv *envelope.Conversation
	var ops []envelope.Op
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, nil, err
		}
		var op envelope.Op
		if err := json.Unmarshal(raw, &op); err != nil {
			return nil, nil, err
		}
		if conv, err = envelope.Apply(conv, &op); err != nil {
			return nil, nil, fmt.Errorf("conversation %s: stored op %d: %w", id, op.Epoch, err)
		}
		ops = append(ops, op)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if conv == nil {
		return nil, nil, edge.Errorf(http.StatusNotFound, relayapi.ReasonUnknownConversation, "unknown conversation %s", id)
	}
	return conv, ops, nil
}

func (s *Server) handleOp(w http.ResponseWriter, r *http.Request, sess *session) {
	var req relayapi.OpRequest
	if err := s.edge.DecodeJSON(r, relayapi.MaxSmallBody, &req); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	op := &req.Op
	if err := op.Verify(); err != nil {
		s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadOp, "%v", err))
		return
	}
	if op.Conversation != r.PathValue("id") {
		s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonOpConversation, "op is for another conversation"))
		return
	}
	if err := s.checkSigner(op, sess); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	stamps, err := parseStamps(req.Stamps)
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	raw, _ := json.Marshal(op)
	ctx := r.Context()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := s.participant(ctx, tx, op.Conversation, sess); err != nil {
			return err
		}
		cur, _, err := s.loadConversation(ctx, tx, op.Conversation)
		if err != nil {
			return err
		}
		next, err := envelope.Apply(cur, op)
		if err != nil {
			return opRefused(http.StatusForbidden, relayapi.ReasonOpNotAllowed, err)
		}
		if err := s.admitMembers(ctx, tx, cur, next, op, stamps); err != nil {
			return err
		}
		return s.storeOp(ctx, tx, next, raw, false)
	})
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, struct{}{})
}

// participant reports whether the caller is a current member of the
// conversation (false: a former one). It answers 404 (not 403) to those
// who never were, so the existence of a conversation is not disclosed.
func (s *Server) participant(ctx context.Context, q querier, id string, sess *session) (current bool, err error) {
	var cur int
	err = q.QueryRow(ctx, `SELECT current FROM relay_members WHERE conversation = ? AND wallet = ?`, id, sess.wallet.String()).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return false, edge.Errorf(http.StatusNotFound, relayapi.ReasonUnknownConversation, "unknown conversation %s", id)
	}
	return cur == 1, err
}

// opsUntilRemoval cuts a conversation's ops for a former member: up to and
// including the op that removed them, so they learn that they were removed
// (and can still verify what they received while a member) but nothing of
// the membership after it.
func opsUntilRemoval(ops []envelope.Op, member wallet.Address) []envelope.Op {
	last := -1
	for i := range ops {
		for _, m := range ops[i].Members {
			if m.Equal(member) {
				last = i
			}
		}
	}
	if last < 0 {
		return nil
	}
	return ops[:min(last+2, len(ops))]
}

func (s *Server) handleConversation(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	if !envelope.ValidID(id) {
		s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadID, "conversation ID is not 32 lowercase hex characters"))
		return
	}
	ctx := r.Context()
	current, err := s.participant(ctx, s.db, id, sess)
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	_, ops, err := s.loadConversation(ctx, s.db, id)
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	if !current {
		ops = opsUntilRemoval(ops, sess.wallet)
	}
	edge.WriteJSON(w, http.StatusOK, relayapi.ConversationResponse{ID: id, Ops: ops})
}

// handleConversations lists the caller's current conversations, split by
// its consent for their creators, as messages are: allowed (or its own) in
// conversations, unanswered in requests, denied left out.
func (s *Server) handleConversations(w http.ResponseWriter, r *http.Request, sess *session) {
	me := sess.wallet.String()
	rows, err := s.db.Query(r.Context(), `SELECT m.conversation, c.creator, COALESCE(k.state, '')
		FROM relay_members m JOIN relay_conversations c ON c.id = m.conversation
		LEFT JOIN relay_consent k ON k.wallet = m.wallet AND k.peer = c.creator
		WHERE m.wallet = ? AND m.current = 1 ORDER BY m.conversation`, me)
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	defer rows.Close()
	resp := relayapi.ConversationsResponse{Conversations: []string{}, Requests: []string{}}
	for rows.Next() {
		var id, creator, state string
		if err := rows.Scan(&id, &creator, &state); err != nil {
			s.edge.WriteError(w, r, err)
			return
		}
		switch {
		case creator == me || state == envelope.Allowed:
			resp.Conversations = append(resp.Conversations, id)
		case state == "":
			resp.Requests = append(resp.Requests, id)
		}
	}
	if err := rows.Err(); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, resp)
}
