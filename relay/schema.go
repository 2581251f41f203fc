package relay

import "github.com/chatmcp/chatmcp/store"

// migrations is the relay's schema. Envelopes are stored as received:
// ciphertext, wrapped keys and signatures, never plaintext.
var migrations = []store.Migration{{
	SQLite: `
CREATE TABLE relay_nonces (nonce TEXT PRIMARY KEY, expires INTEGER NOT NULL);
CREATE TABLE relay_devices (wallet TEXT NOT NULL, device TEXT NOT NULL, cert BLOB NOT NULL,
  created INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0, revocation BLOB,
  PRIMARY KEY (wallet, device));
CREATE TABLE relay_sessions (token_hash BLOB PRIMARY KEY, wallet TEXT NOT NULL, device TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE TABLE relay_users (wallet TEXT PRIMARY KEY, difficulty INTEGER NOT NULL);
CREATE TABLE relay_conversations (id TEXT PRIMARY KEY, kind TEXT NOT NULL, creator TEXT NOT NULL,
  epoch INTEGER NOT NULL, members_hash BLOB NOT NULL);
CREATE TABLE relay_members (conversation TEXT NOT NULL, wallet TEXT NOT NULL, current INTEGER NOT NULL,
  PRIMARY KEY (conversation, wallet));
CREATE INDEX relay_members_wallet ON relay_members (wallet, current);
CREATE TABLE relay_ops (conversation TEXT NOT NULL, epoch INTEGER NOT NULL, op BLOB NOT NULL,
  PRIMARY KEY (conversation, epoch));
CREATE TABLE relay_messages (id TEXT PRIMARY KEY, conversation TEXT NOT NULL, sender TEXT NOT NULL,
  envelope BLOB NOT NULL, stored INTEGER NOT NULL);
CREATE TABLE relay_deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL,
  message TEXT NOT NULL, conversation TEXT NOT NULL, sender TEXT NOT NULL, folder TEXT NOT NULL);
CREATE INDEX relay_deliveries_recipient ON relay_deliveries (recipient, seq);
CREATE TABLE relay_consent (wallet TEXT NOT NULL, peer TEXT NOT NULL, state TEXT NOT NULL, update_json BLOB NOT NULL,
  PRIMARY KEY (wallet, peer));
`,
	Postgres: `
CREATE TABLE relay_nonces (nonce TEXT PRIMARY KEY, expires BIGINT NOT NULL);
CREATE TABLE relay_devices (wallet TEXT NOT NULL, device TEXT NOT NULL, cert BYTEA NOT NULL,
  created BIGINT NOT NULL, revoked BIGINT NOT NULL DEFAULT 0, revocation BYTEA,
  PRIMARY KEY (wallet, device));
CREATE TABLE relay_sessions (token_hash BYTEA PRIMARY KEY, wallet TEXT NOT NULL, device TEXT NOT NULL, expires BIGINT NOT NULL);
CREATE TABLE relay_users (wallet TEXT PRIMARY KEY, difficulty INTEGER NOT NULL);
CREATE TABLE relay_conversations (id TEXT PRIMARY KEY, kind TEXT NOT NULL, creator TEXT NOT NULL,
  epoch BIGINT NOT NULL, members_hash BYTEA NOT NULL);
CREATE TABLE relay_members (conversation TEXT NOT NULL, wallet TEXT NOT NULL, current INTEGER NOT NULL,
  PRIMARY KEY (conversation, wallet));
CREATE INDEX relay_members_wallet ON relay_members (wallet, current);
CREATE TABLE relay_ops (conversation TEXT NOT NULL, epoch BIGINT NOT NULL, op BYTEA NOT NULL,
  PRIMARY KEY (conversation, epoch));
CREATE TABLE relay_messages (id TEXT PRIMARY KEY, conversation TEXT NOT NULL, sender TEXT NOT NULL,
  envelope BYTEA NOT NULL, stored BIGINT NOT NULL);
CREATE TABLE relay_deliveries (seq BIGSERIAL PRIMARY KEY, recipient TEXT NOT NULL,
  message TEXT NOT NULL, conversation TEXT NOT NULL, sender TEXT NOT NULL, folder TEXT NOT NULL);
CREATE INDEX relay_deliveries_recipient ON relay_deliveries (recipient, seq);
CREATE TABLE relay_consent (wallet TEXT NOT NULL, peer TEXT NOT NULL, state TEXT NOT NULL, update_json BYTEA NOT NULL,
  PRIMARY KEY (wallet, peer));
`,
}, {
	// Version 2: a group's ID now derives from its creator and a nonce
	// (envelope.GroupID), so that no group can sit at a direct
	// conversation's ID. Groups created before carry no nonce: their ops no
	// longer verify, for clients as for the relay, and one of them may be
	// squatting on a direct conversation's ID. Every group in the database
	// at this step is such a group (code that stores groups with a nonce
	// runs only after this step), so they are deleted with their messages
	// and memberships; direct conversations stay.
	SQLite: dropGroups,
}, {
	// Version 3: a user's price for strangers' first messages (a
	// stamp.Price as JSON; empty: no price, proof of work only).
	SQLite: `ALTER TABLE relay_users ADD COLUMN price TEXT NOT NULL DEFAULT ''`,
}}

const dropGroups = `
DELETE FROM relay_deliveries WHERE conversation IN (SELECT id FROM relay_conversations WHERE kind = 'group');
DELETE FROM relay_messages WHERE conversation IN (SELECT id FROM relay_conversations WHERE kind = 'group');
DELETE FROM relay_members WHERE conversation IN (SELECT id FROM relay_conversations WHERE kind = 'group');
DELETE FROM relay_ops WHERE conversation IN (SELECT id FROM relay_conversations WHERE kind = 'group');
DELETE FROM relay_conversations WHERE kind = 'group';
`
