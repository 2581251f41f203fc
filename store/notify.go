package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Listener receives PostgreSQL notifications on one channel over its own
// connection (LISTEN/NOTIFY), so replicas sharing a database can tell each
// other about new rows.
type Listener struct {
	dsn, channel string
	conn         *pgx.Conn
}

// Listen connects to the PostgreSQL database at dsn and listens on
// channel. When it returns, notifications committed from then on will be
// received.
func Listen(ctx context.Context, dsn, channel string) (*Listener, error) {
	l := &Listener{dsn: dsn, channel: channel}
	if err := l.connect(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Listener) connect(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, l.dsn)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", l.channel, err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		conn.Close(ctx)
		return fmt.Errorf("listening on %s: %w", l.channel, err)
	}
	l.conn = conn
	return nil
}

// ErrReconnected is returned by Next after the connection was lost and
// re-established: notifications sent in between may have been missed, so
// the caller should re-read whatever it watches.
var ErrReconnected = errors.New("listener reconnected; notifications may have been missed")

// Next waits for the next notification and returns its payload. If the
// connection fails it reconnects once and returns ErrReconnected, or the
// connection error if that fails too.
func (l *Listener) Next(ctx context.Context) (string, error) {
	if l.conn == nil {
		if err := l.connect(ctx); err != nil {
			return "", err
		}
		return "", ErrReconnected
	}
	n, err := l.conn.WaitForNotification(ctx)
	if err == nil {
		return n.Payload, nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	l.conn.Close(context.Background())
	l.conn = nil
	if err := l.connect(ctx); err != nil {
		return "", err
	}
	return "", ErrReconnected
}

// Close closes the connection.
func (l *Listener) Close() error {
	if l.conn == nil {
		return nil
	}
	return l.conn.Close(context.Background())
}

// Notify queues a notification on channel inside tx; PostgreSQL delivers it
// when tx commits. On SQLite it does nothing (one process, nobody to tell).
func (tx *Tx) Notify(ctx context.Context, channel, payload string) error {
	if tx.db.Dialect != Postgres {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify(?, ?)`, channel, payload)
	return err
}
