package relay

import (
	"context"
	"database/sql"
	"errors"
	"net/http"

	"github.com/chatmcp/chatmcp/chat/envelope"
	"github.com/chatmcp/chatmcp/chat/relayapi"
	"github.com/chatmcp/chatmcp/store"
	"github.com/go-json-experiment/json"
)

func (s *Server) checkSigner(op *envelope.Op, sess *session) error {
	if !op.Signer.Wallet.Equal(sess.wallet) || op.Signer.Device != sess.device {
		return errorf(http.StatusForbidden, "membership op not signed by this session's device")
	}
	return nil
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, sess *session) {
	var req relayapi.OpRequest
	if err := decode(r, relayapi.MaxSmallBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	op := &req.Op
	conv, err := envelope.Apply(nil, op)
	if err != nil {
		s.fail(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	if err := s.checkSigner(op, sess); err != nil {
		s.fail(w, r, err)
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
			return errorf(http.StatusConflict, "conversation %s already exists", conv.ID)
		}
		return s.storeOp(ctx, tx, conv, raw, true)
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, relayapi.ConversationResponse{ID: conv.ID, Ops: []envelope.Op{*op}})
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
			return errorf(http.StatusConflict, "conversation %s changed concurrently; retry", conv.ID)
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
			return nil, nil, err
		}
		ops = append(ops, op)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if conv == nil {
		return nil, nil, errorf(http.StatusNotFound, "unknown conversation %s", id)
	}
	return conv, ops, nil
}

func (s *Server) handleOp(w http.ResponseWriter, r *http.Request, sess *session) {
	var req relayapi.OpRequest
	if err := decode(r, relayapi.MaxSmallBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	op := &req.Op
	if op.Conversation != r.PathValue("id") {
		s.fail(w, r, errorf(http.StatusBadRequest, "op is for another conversation"))
		return
	}
	if err := s.checkSigner(op, sess); err != nil {
		s.fail(w, r, err)
		return
	}
	raw, _ := json.Marshal(op)
	ctx := r.Context()
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := s.requireParticipant(ctx, tx, op.Conversation, sess); err != nil {
			return err
		}
		cur, _, err := s.loadConversation(ctx, tx, op.Conversation)
		if err != nil {
			return err
		}
		next, err := envelope.Apply(cur, op)
		if err != nil {
			return errorf(http.StatusForbidden, "%v", err)
		}
		return s.storeOp(ctx, tx, next, raw, false)
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// requireParticipant answers 404 (not 403) to non-participants so the
// existence of a conversation is not disclosed.
func (s *Server) requireParticipant(ctx context.Context, q querier, id string, sess *session) error {
	var cur int
	err := q.QueryRow(ctx, `SELECT current FROM relay_members WHERE conversation = ? AND wallet = ?`, id, sess.wallet.String()).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return errorf(http.StatusNotFound, "unknown conversation %s", id)
	}
	return err
}

func (s *Server) handleConversation(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	if !envelope.ValidID(id) {
		s.fail(w, r, errorf(http.StatusBadRequest, "conversation ID is not 32 lowercase hex characters"))
		return
	}
	ctx := r.Context()
	if err := s.requireParticipant(ctx, s.db, id, sess); err != nil {
		s.fail(w, r, err)
		return
	}
	_, ops, err := s.loadConversation(ctx, s.db, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, relayapi.ConversationResponse{ID: id, Ops: ops})
}

func (s *Server) handleConversations(w http.ResponseWriter, r *http.Request, sess *session) {
	rows, err := s.db.Query(r.Context(), `SELECT conversation FROM relay_members WHERE wallet = ? AND current = 1 ORDER BY conversation`, sess.wallet.String())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rows.Close()
	resp := relayapi.ConversationsResponse{Conversations: []string{}}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			s.fail(w, r, err)
			return
		}
		resp.Conversations = append(resp.Conversations, id)
	}
	writeJSON(w, http.StatusOK, resp)
}
