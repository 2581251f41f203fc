package relay

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/internal/edge"
	"github.com/chatmcp/chatmcp/relayapi"
	"github.com/chatmcp/chatmcp/store"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/go-json-experiment/json"
)

// session is an authenticated caller.
type session struct {
	wallet    wallet.Address
	device    string
	tokenHash []byte
}

func (s *Server) handleNonce(w http.ResponseWriter, r *http.Request) {
	var b [16]byte
	if _, err := io.ReadFull(s.opts.Rand, b[:]); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	nonce := hex.EncodeToString(b[:])
	now := s.opts.Now()
	expires := now.Add(s.opts.NonceTTL).UnixMilli()
	ctx := r.Context()
	if _, err := s.db.Exec(ctx, `DELETE FROM relay_nonces WHERE expires < ?`, now.UnixMilli()); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	if _, err := s.db.Exec(ctx, `INSERT INTO relay_nonces (nonce, expires) VALUES (?, ?)`, nonce, expires); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, relayapi.NonceResponse{Nonce: nonce, Domain: s.opts.Domain, ChainID: s.opts.ChainID, Expires: expires})
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req relayapi.LoginRequest
	if err := s.edge.DecodeJSON(r, relayapi.MaxLoginBody, &req); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	resp, err := s.login(r.Context(), &req)
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, resp)
}

// login checks, in order: the message parses; its domain, chain, version
// and times; the wallet signature; the device certificate; then it spends
// the nonce and opens a session in one transaction.
func (s *Server) login(ctx context.Context, req *relayapi.LoginRequest) (*relayapi.LoginResponse, error) {
	m, err := wallet.ParseSignInMessage(req.Message)
	if err != nil {
		return nil, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadSignIn, "%v", err)
	}
	now := s.opts.Now()
	switch {
	case m.Domain != s.opts.Domain:
		return nil, edge.Errorf(http.StatusUnauthorized, relayapi.ReasonWrongDomain, "sign-in rejected: domain %q is not this relay (%q)", m.Domain, s.opts.Domain)
	case m.Version != "1":
		return nil, edge.Errorf(http.StatusUnauthorized, relayapi.ReasonWrongVersion, "sign-in rejected: version %q, want 1", m.Version)
	case m.ChainID != s.opts.ChainID:
		return nil, edge.Errorf(http.StatusUnauthorized, relayapi.ReasonWrongChain, "sign-in rejected: chain ID %q, want %q", m.ChainID, s.opts.ChainID)
	case m.Nonce == "":
		return nil, edge.Errorf(http.StatusUnauthorized, relayapi.ReasonNoNonce, "sign-in rejected: no nonce")
	case m.IssuedAt.IsZero() || m.ExpirationTime.IsZero():
		return nil, edge.Errorf(http.StatusUnauthorized, relayapi.ReasonNoTimes, "sign-in rejected: issued-at and expiration time are required")
	case m.IssuedAt.After(now.Add(s.opts.MaxSkew)) || m.IssuedAt.Before(now.Add(-s.opts.NonceTTL-s.opts.MaxSkew)):
		return nil, edge.Errorf(http.StatusUnauthorized, relayapi.ReasonIssuedAt, "sign-in rejected: issued-at %s is outside the accepted window", m.IssuedAt.Format(time.RFC3339))
	case !m.ExpirationTime.After(now):
		return nil, edge.Errorf(http.StatusUnauthorized, relayapi.ReasonSignInExpired, "sign-in rejected: message expired")
	case m.ExpirationTime.Sub(m.IssuedAt) > s.opts.NonceTTL+s.opts.MaxSkew:
		return nil, edge.Errorf(http.StatusUnauthorized, relayapi.ReasonExpiryTooLong, "sign-in rejected: expiration time too far after issued-at")
	case !m.NotBefore.IsZero() && m.NotBefore.After(now):
		return nil, edge.Errorf(http.StatusUnauthorized, relayapi.ReasonNotYetValid, "sign-in rejected: not valid yet")
	}
	if !m.Address.Verify([]byte(req.Message), req.Signature) {
		return nil, edge.Errorf(http.StatusUnauthorized, relayapi.ReasonBadSignature, "sign-in rejected: wallet signature does not verify")
	}
	if err := req.Device.Verify(); err != nil {
		return nil, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadDevice, "%v", err)
	}
	if !req.Device.Wallet.Equal(m.Address) {
		return nil, edge.Errorf(http.StatusUnauthorized, relayapi.ReasonDeviceWallet, "sign-in rejected: device certificate is for another wallet")
	}
	certJSON, err := json.Marshal(req.Device)
	if err != nil {
		return nil, err
	}
	// The device's identity is the certificate its wallet signed; its
	// evidence binds itself to the device's keys and may be refreshed (an
	// agent restarted or reconfigured), so it is compared apart.
	bareJSON, err := json.Marshal(req.Device.Bare())
	if err != nil {
		return nil, err
	}
	var tok [32]byte
	if _, err := io.ReadFull(s.opts.Rand, tok[:]); err != nil {
		return nil, err
	}
	token := base64.RawURLEncoding.EncodeToString(tok[:])
	th := sha256.Sum256([]byte(token))
	expires := now.Add(s.opts.SessionTTL).UnixMilli()
	addr := m.Address.String()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM relay_nonces WHERE nonce = ? AND expires >= ?`, m.Nonce, now.UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return edge.Errorf(http.StatusUnauthorized, relayapi.ReasonNonceInvalid, "sign-in rejected: nonce unknown, expired or already used")
		}
		var existing []byte
		var revoked int64
		err = tx.QueryRow(ctx, `SELECT cert, revoked FROM relay_devices WHERE wallet = ? AND device = ?`, addr, req.Device.Device).Scan(&existing, &revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO relay_devices (wallet, device, cert, created) VALUES (?, ?, ?, ?)`,
				addr, req.Device.Device, certJSON, now.UnixMilli()); err != nil {
				return err
			}
		case err != nil:
			return err
		case revoked != 0:
			return edge.Errorf(http.StatusForbidden, relayapi.ReasonDeviceRevoked, "device %s was revoked", req.Device.Device)
		case string(existing) != string(certJSON):
			var old envelope.DeviceCert
			if err := json.Unmarshal(existing, &old); err != nil {
				return err
			}
			if oldBare, err := json.Marshal(old.Bare()); err != nil || string(oldBare) != string(bareJSON) {
				return edge.Errorf(http.StatusConflict, relayapi.ReasonDeviceConflict, "device %s is registered with a different certificate", req.Device.Device)
			}
			// A sign-in without evidence (another client of the same
			// device) keeps the evidence published; new evidence replaces it.
			if req.Device.HasEvidence() {
				if _, err := tx.Exec(ctx, `UPDATE relay_devices SET cert = ? WHERE wallet = ? AND device = ?`, certJSON, addr, req.Device.Device); err != nil {
					return err
				}
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO relay_sessions (token_hash, wallet, device, expires) VALUES (?, ?, ?, ?)`,
			th[:], addr, req.Device.Device, expires)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &relayapi.LoginResponse{Token: token, Expires: expires}, nil
}

// authed wraps h with bearer-session authentication. A revoked device's
// sessions are deleted on revocation, so a found session is live.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, err := edge.Bearer(r)
		if err != nil {
			s.edge.WriteError(w, r, edge.Errorf(http.StatusUnauthorized, relayapi.ReasonUnauthorized, "not signed in: run 'chatmcp chat login'"))
			return
		}
		th := sha256.Sum256([]byte(tok))
		var addr, device string
		var expires int64
		err = s.db.QueryRow(r.Context(), `SELECT wallet, device, expires FROM relay_sessions WHERE token_hash = ?`, th[:]).Scan(&addr, &device, &expires)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && expires < s.opts.Now().UnixMilli()) {
			s.edge.WriteError(w, r, edge.Errorf(http.StatusUnauthorized, relayapi.ReasonSessionExpired, "session unknown or expired: run 'chatmcp chat login'"))
			return
		}
		if err != nil {
			s.edge.WriteError(w, r, err)
			return
		}
		a, err := wallet.ParseAddress(addr)
		if err != nil {
			s.edge.WriteError(w, r, err)
			return
		}
		h(w, r, &session{wallet: a, device: device, tokenHash: th[:]})
	}
}

// live reports whether the session still exists and has not expired (a
// revocation deletes the device's sessions).
func (s *Server) live(ctx context.Context, sess *session) (bool, error) {
	var expires int64
	err := s.db.QueryRow(ctx, `SELECT expires FROM relay_sessions WHERE token_hash = ?`, sess.tokenHash).Scan(&expires)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil && expires >= s.opts.Now().UnixMilli(), err
}

func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request, sess *session) {
	rows, err := s.db.Query(r.Context(), `SELECT cert, revoked FROM relay_devices WHERE wallet = ? ORDER BY created, device`, sess.wallet.String())
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	defer rows.Close()
	resp := relayapi.DevicesResponse{Devices: []relayapi.Device{}}
	for rows.Next() {
		var cert []byte
		var d relayapi.Device
		if err := rows.Scan(&cert, &d.Revoked); err != nil {
			s.edge.WriteError(w, r, err)
			return
		}
		if err := json.Unmarshal(cert, &d.Cert); err != nil {
			s.edge.WriteError(w, r, err)
			return
		}
		resp.Devices = append(resp.Devices, d)
	}
	if err := rows.Err(); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, resp)
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, sess *session) {
	var req relayapi.RevokeRequest
	if err := s.edge.DecodeJSON(r, relayapi.MaxSmallBody, &req); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	rv := &req.Revocation
	if err := rv.Verify(); err != nil {
		s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadRevocation, "%v", err))
		return
	}
	if !rv.Wallet.Equal(sess.wallet) {
		s.edge.WriteError(w, r, edge.Errorf(http.StatusForbidden, relayapi.ReasonRevocationOther, "revocation is for another wallet"))
		return
	}
	raw, _ := json.Marshal(rv)
	ctx := r.Context()
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE relay_devices SET revoked = ?, revocation = ? WHERE wallet = ? AND device = ? AND revoked = 0`,
			s.opts.Now().UnixMilli(), raw, rv.Wallet.String(), rv.Device)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return edge.Errorf(http.StatusNotFound, relayapi.ReasonUnknownDevice, "no active device %s", rv.Device)
		}
		_, err = tx.Exec(ctx, `DELETE FROM relay_sessions WHERE wallet = ? AND device = ?`, rv.Wallet.String(), rv.Device)
		return err
	})
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	edge.WriteJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) handleUser(w http.ResponseWriter, r *http.Request, _ *session) {
	addr, err := wallet.ParseAddress(r.PathValue("address"))
	if err != nil {
		s.edge.WriteError(w, r, edge.Errorf(http.StatusBadRequest, relayapi.ReasonBadAddress, "%v", err))
		return
	}
	ctx := r.Context()
	resp := relayapi.UserResponse{Address: addr, Devices: []envelope.DeviceCert{}}
	certs, err := s.activeDevices(ctx, s.db, addr.String())
	if err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	resp.Devices = append(resp.Devices, certs...)
	if resp.Revocations, err = s.revocations(ctx, s.db, addr.String()); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	if resp.Difficulty, err = s.difficulty(ctx, s.db, addr.String()); err != nil {
		s.edge.WriteError(w, r, err)
		return
	}
	if s.opts.Payments != nil {
		if resp.Price, err = s.price(ctx, s.db, addr.String()); err != nil {
			s.edge.WriteError(w, r, err)
			return
		}
	}
	edge.WriteJSON(w, http.StatusOK, resp)
}

// querier is a *store.DB or *store.Tx.
type querier interface {
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) *sql.Row
}

func (s *Server) activeDevices(ctx context.Context, q querier, addr string) ([]envelope.DeviceCert, error) {
	rows, err := q.Query(ctx, `SELECT cert FROM relay_devices WHERE wallet = ? AND revoked = 0 ORDER BY created, device`, addr)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []envelope.DeviceCert
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var c envelope.DeviceCert
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// revocations are the signed revocations of addr's revoked devices.
func (s *Server) revocations(ctx context.Context, q querier, addr string) ([]envelope.Revocation, error) {
	rows, err := q.Query(ctx, `SELECT revocation FROM relay_devices WHERE wallet = ? AND revoked <> 0 AND revocation IS NOT NULL ORDER BY revoked, device`, addr)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []envelope.Revocation
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var rv envelope.Revocation
		if err := json.Unmarshal(raw, &rv); err != nil {
			return nil, err
		}
		out = append(out, rv)
	}
	return out, rows.Err()
}

func (s *Server) difficulty(ctx context.Context, q querier, addr string) (int, error) {
	var d int
	err := q.QueryRow(ctx, `SELECT difficulty FROM relay_users WHERE wallet = ?`, addr).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return s.opts.DefaultDifficulty, nil
	}
	return d, err
}
