package kbs

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/chatmcp/chatmcp/kbsapi"
	"github.com/chatmcp/chatmcp/store"
)

// migrations are the KBS schema steps on a store.DB. Released steps are
// never edited.
var migrations = []store.Migration{
	{
		SQLite: `CREATE TABLE kbs_secrets (
			name TEXT PRIMARY KEY,
			current_version INTEGER NOT NULL,
			policy TEXT NOT NULL,
			policy_sha256 TEXT NOT NULL,
			revoked INTEGER NOT NULL DEFAULT 0,
			updated_ms BIGINT NOT NULL
		);
		CREATE TABLE kbs_versions (
			name TEXT NOT NULL REFERENCES kbs_secrets(name),
			version INTEGER NOT NULL,
			wrapped_key BLOB NOT NULL,
			ciphertext BLOB NOT NULL,
			created_ms BIGINT NOT NULL,
			PRIMARY KEY (name, version)
		);
		CREATE TABLE kbs_nonces (
			nonce TEXT PRIMARY KEY,
			secret TEXT NOT NULL,
			tee TEXT NOT NULL,
			expires_ms BIGINT NOT NULL
		);
		CREATE INDEX kbs_nonces_expires ON kbs_nonces(expires_ms);
		CREATE TABLE kbs_meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);`,
		Postgres: `CREATE TABLE kbs_secrets (
			name TEXT PRIMARY KEY,
			current_version INTEGER NOT NULL,
			policy TEXT NOT NULL,
			policy_sha256 TEXT NOT NULL,
			revoked INTEGER NOT NULL DEFAULT 0,
			updated_ms BIGINT NOT NULL
		);
		CREATE TABLE kbs_versions (
			name TEXT NOT NULL REFERENCES kbs_secrets(name),
			version INTEGER NOT NULL,
			wrapped_key BYTEA NOT NULL,
			ciphertext BYTEA NOT NULL,
			created_ms BIGINT NOT NULL,
			PRIMARY KEY (name, version)
		);
		CREATE TABLE kbs_nonces (
			nonce TEXT PRIMARY KEY,
			secret TEXT NOT NULL,
			tee TEXT NOT NULL,
			expires_ms BIGINT NOT NULL
		);
		CREATE INDEX kbs_nonces_expires ON kbs_nonces(expires_ms);
		CREATE TABLE kbs_meta (k TEXT PRIMARY KEY, v BYTEA NOT NULL);`,
	},
}

// Storage is the KBS's state on a store.DB: secrets, their encrypted
// versions and policies, revocations and outstanding nonces. Several KBS
// replicas may share one PostgreSQL database.
type Storage struct {
	db *store.DB
}

// Errors of Storage that callers branch on.
var (
	ErrNotFound  = errors.New("no such secret")
	ErrNonceUsed = errors.New("nonce unknown or already used")
)

// OpenStorage migrates db to the KBS schema and returns its Storage.
func OpenStorage(ctx context.Context, db *store.DB) (*Storage, error) {
	if err := db.Migrate(ctx, "kbs", migrations); err != nil {
		return nil, err
	}
	return &Storage{db: db}, nil
}

// storedSecret is one secret's current state.
type storedSecret struct {
	Name         string
	Version      int
	Policy       string
	PolicySHA256 string
	Revoked      bool
	WrappedKey   []byte
	Ciphertext   []byte
}

func policyDigest(policy string) string {
	s := sha256.Sum256([]byte(policy))
	return hex.EncodeToString(s[:])
}

// put creates name at version 1 or rotates it to current+1, clearing a
// revocation, and calls hook inside the transaction before commit (the
// audit append: if it fails, nothing is committed). encrypt produces the
// stored bytes for the chosen version.
func (s *Storage) put(ctx context.Context, name, policy string, now time.Time,
	encrypt func(version int) (wrapped, ct []byte, err error), hook func(version int) error) (int, error) {
	var version int
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var cur int
		err := tx.QueryRow(ctx, `SELECT current_version FROM kbs_secrets WHERE name = ?`, name).Scan(&cur)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			cur = 0
		case err != nil:
			return err
		}
		version = cur + 1
		wrapped, ct, err := encrypt(version)
		if err != nil {
			return err
		}
		if cur == 0 {
			_, err = tx.Exec(ctx, `INSERT INTO kbs_secrets (name, current_version, policy, policy_sha256, revoked, updated_ms) VALUES (?, ?, ?, ?, 0, ?)`,
				name, version, policy, policyDigest(policy), now.UnixMilli())
		} else {
			_, err = tx.Exec(ctx, `UPDATE kbs_secrets SET current_version = ?, policy = ?, policy_sha256 = ?, revoked = 0, updated_ms = ? WHERE name = ?`,
				version, policy, policyDigest(policy), now.UnixMilli(), name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO kbs_versions (name, version, wrapped_key, ciphertext, created_ms) VALUES (?, ?, ?, ?, ?)`,
			name, version, wrapped, ct, now.UnixMilli()); err != nil {
			return err
		}
		return hook(version)
	})
	if err != nil {
		return 0, fmt.Errorf("storing secret %s: %w", name, err)
	}
	return version, nil
}

// update changes an existing secret's policy or revokes it, calling hook
// before commit. It returns the secret's current version.
func (s *Storage) update(ctx context.Context, name string, policy *string, revoke bool, now time.Time, hook func(version int) error) (int, error) {
	var version int
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT current_version FROM kbs_secrets WHERE name = ?`, name).Scan(&version); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		var err error
		if policy != nil {
			_, err = tx.Exec(ctx, `UPDATE kbs_secrets SET policy = ?, policy_sha256 = ?, updated_ms = ? WHERE name = ?`,
				*policy, policyDigest(*policy), now.UnixMilli(), name)
		}
		if err == nil && revoke {
			_, err = tx.Exec(ctx, `UPDATE kbs_secrets SET revoked = 1, updated_ms = ? WHERE name = ?`, now.UnixMilli(), name)
		}
		if err != nil {
			return err
		}
		return hook(version)
	})
	return version, err
}

// current loads a secret's current version for release.
func (s *Storage) current(ctx context.Context, name string) (*storedSecret, error) {
	var st storedSecret
	var revoked int
	err := s.db.QueryRow(ctx, `SELECT s.name, s.current_version, s.policy, s.policy_sha256, s.revoked, v.wrapped_key, v.ciphertext
		FROM kbs_secrets s JOIN kbs_versions v ON v.name = s.name AND v.version = s.current_version
		WHERE s.name = ?`, name).Scan(&st.Name, &st.Version, &st.Policy, &st.PolicySHA256, &revoked, &st.WrappedKey, &st.Ciphertext)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("loading secret %s: %w", name, err)
	}
	st.Revoked = revoked != 0
	return &st, nil
}

// list describes every secret.
func (s *Storage) list(ctx context.Context) ([]kbsapi.SecretInfo, error) {
	rows, err := s.db.Query(ctx, `SELECT s.name, s.current_version, s.policy_sha256, s.revoked, s.updated_ms, v.version
		FROM kbs_secrets s JOIN kbs_versions v ON v.name = s.name ORDER BY s.name, v.version`)
	if err != nil {
		return nil, fmt.Errorf("listing secrets: %w", err)
	}
	defer rows.Close()
	out := []kbsapi.SecretInfo{}
	for rows.Next() {
		var si kbsapi.SecretInfo
		var revoked int
		var updated int64
		var v int
		if err := rows.Scan(&si.Name, &si.Version, &si.PolicySHA256, &revoked, &updated, &v); err != nil {
			return nil, fmt.Errorf("listing secrets: %w", err)
		}
		if n := len(out); n > 0 && out[n-1].Name == si.Name {
			out[n-1].Versions = append(out[n-1].Versions, v)
			continue
		}
		si.Revoked = revoked != 0
		si.Updated = time.UnixMilli(updated).UTC()
		si.Versions = []int{v}
		out = append(out, si)
	}
	return out, rows.Err()
}

// issueNonce stores a fresh nonce for (secret, tee) until expires, and
// deletes nonces that expired before now.
func (s *Storage) issueNonce(ctx context.Context, nonce []byte, secret, tee string, now, expires time.Time) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM kbs_nonces WHERE expires_ms < ?`, now.Add(-time.Minute).UnixMilli()); err != nil {
		return fmt.Errorf("expiring nonces: %w", err)
	}
	if _, err := s.db.Exec(ctx, `INSERT INTO kbs_nonces (nonce, secret, tee, expires_ms) VALUES (?, ?, ?, ?)`,
		hex.EncodeToString(nonce), secret, tee, expires.UnixMilli()); err != nil {
		return fmt.Errorf("storing nonce: %w", err)
	}
	return nil
}

// nonceRecord is what a nonce was issued for.
type nonceRecord struct {
	Secret  string
	TEE     string
	Expires time.Time
}

// consumeNonce deletes nonce and returns what it was issued for. Deletion
// is one statement, so across replicas exactly one caller gets the record;
// every other gets ErrNonceUsed. Expiry is the caller's check.
func (s *Storage) consumeNonce(ctx context.Context, nonce []byte) (*nonceRecord, error) {
	var rec nonceRecord
	var exp int64
	err := s.db.QueryRow(ctx, `DELETE FROM kbs_nonces WHERE nonce = ? RETURNING secret, tee, expires_ms`,
		hex.EncodeToString(nonce)).Scan(&rec.Secret, &rec.TEE, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNonceUsed
	}
	if err != nil {
		return nil, fmt.Errorf("consuming nonce: %w", err)
	}
	rec.Expires = time.UnixMilli(exp)
	return &rec, nil
}

// sealerCheckAAD labels the known-plaintext check value that detects a
// sealing key other than the one the database was written with.
var sealerCheckAAD = []byte("chatmcp/kbs/v1 sealer check")

// CheckSealer makes sure sl is the sealer this database's secrets were
// sealed with: the first caller stores a sealed check value, every later one
// must unseal it. A KBS started with the wrong (or a lost and regenerated)
// sealing key fails here instead of at the first release.
func (s *Storage) CheckSealer(ctx context.Context, sl Sealer) error {
	var v []byte
	err := s.db.QueryRow(ctx, `SELECT v FROM kbs_meta WHERE k = 'sealer_check'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		sealed, err := sl.Seal(ctx, sealerCheckAAD, sealerCheckAAD)
		if err != nil {
			return fmt.Errorf("sealer check: %w", err)
		}
		if _, err := s.db.Exec(ctx, `INSERT INTO kbs_meta (k, v) VALUES ('sealer_check', ?)`, sealed); err != nil && !store.IsUniqueViolation(err) {
			return fmt.Errorf("sealer check: %w", err)
		}
		return s.CheckSealer(ctx, sl)
	}
	if err != nil {
		return fmt.Errorf("sealer check: %w", err)
	}
	if _, err := sl.Unseal(ctx, v, sealerCheckAAD); err != nil {
		return errors.New("the sealing key is not the one this database was written with: every replica needs the same key file, and a lost key cannot be regenerated (see docs/kbs.md, recovery)")
	}
	return nil
}
