// Package solrpc is a minimal Solana JSON-RPC client for the methods
// ChatMCP calls (getLatestBlockhash, sendTransaction, simulateTransaction,
// getSignatureStatuses, getAccountInfo, getTokenAccountBalance,
// requestAirdrop); it decodes answers strictly and bounds their size. The
// RPC endpoint is not trusted with keys: it sees signed transactions only.
package solrpc

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxResponse bounds one RPC answer.
const MaxResponse = 1 << 20

// Client calls one RPC endpoint.
type Client struct {
	// URL is the endpoint, e.g. https://api.devnet.solana.com. Required.
	URL string
	// HTTP is the HTTP client. If nil, http.DefaultClient.
	HTTP *http.Client
	// Commitment of reads and confirmations. If empty, "confirmed".
	Commitment string
	id         atomic.Int64
}

// Error is an error the RPC endpoint answered (JSON-RPC error object).
type Error struct {
	Code    int            `json:"code"`
	Message string         `json:"message"`
	Data    jsontext.Value `json:"data,omitzero"`
}

func (e *Error) Error() string { return fmt.Sprintf("rpc error %d: %s", e.Code, e.Message) }

// ErrNotFound is returned for an account that does not exist.
var ErrNotFound = errors.New("account not found")

func (c *Client) commitment() string {
	if c.Commitment == "" {
		return "confirmed"
	}
	return c.Commitment
}

// Call calls method with params and decodes the result into out.
func (c *Client) Call(ctx context.Context, method string, params []any, out any) error {
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.id.Add(1), "method": method, "params": params})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if len(data) > MaxResponse {
		return fmt.Errorf("%s: answer longer than %d bytes", method, MaxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", method, resp.StatusCode)
	}
	var r struct {
		Result jsontext.Value `json:"result"`
		Error  *Error         `json:"error"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("%s: malformed answer: %v", method, err)
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %w", method, r.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(r.Result, out); err != nil {
		return fmt.Errorf("%s: malformed result: %v", method, err)
	}
	return nil
}

// Blockhash is a recent blockhash (base58) and the last block height at
// which a transaction using it is valid.
type Blockhash struct {
	Blockhash            string `json:"blockhash"`
	LastValidBlockHeight uint64 `json:"lastValidBlockHeight"`
}

// LatestBlockhash calls getLatestBlockhash.
func (c *Client) LatestBlockhash(ctx context.Context) (*Blockhash, error) {
	var r struct {
		Value Blockhash `json:"value"`
	}
	if err := c.Call(ctx, "getLatestBlockhash", []any{map[string]any{"commitment": c.commitment()}}, &r); err != nil {
		return nil, err
	}
	return &r.Value, nil
}

// SendTransaction submits a signed wire transaction and returns its
// signature (base58). Preflight simulation runs at the client's
// commitment.
func (c *Client) SendTransaction(ctx context.Context, wire []byte) (string, error) {
	var sig string
	err := c.Call(ctx, "sendTransaction", []any{base64.StdEncoding.EncodeToString(wire),
		map[string]any{"encoding": "base64", "preflightCommitment": c.commitment()}}, &sig)
	return sig, err
}

// Simulation is the result of simulateTransaction. Err is the
// transaction error as the endpoint reported it (nil on success).
type Simulation struct {
	Err           jsontext.Value `json:"err"`
	Logs          []string       `json:"logs"`
	UnitsConsumed uint64         `json:"unitsConsumed"`
}

// Failed reports whether the simulated transaction failed.
func (s *Simulation) Failed() bool { return len(s.Err) != 0 && string(s.Err) != "null" }

// SimulateTransaction simulates a wire transaction with its own blockhash
// (no replacement); sigVerify says whether the endpoint checks its
// signatures (off for a transaction that still lacks one).
func (c *Client) SimulateTransaction(ctx context.Context, wire []byte, sigVerify bool) (*Simulation, error) {
	var r struct {
		Value Simulation `json:"value"`
	}
	err := c.Call(ctx, "simulateTransaction", []any{base64.StdEncoding.EncodeToString(wire),
		map[string]any{"encoding": "base64", "sigVerify": sigVerify, "replaceRecentBlockhash": false, "commitment": c.commitment()}}, &r)
	if err != nil {
		return nil, err
	}
	return &r.Value, nil
}

// SignatureStatus is one entry of getSignatureStatuses.
type SignatureStatus struct {
	Slot               uint64         `json:"slot"`
	Err                jsontext.Value `json:"err"`
	ConfirmationStatus string         `json:"confirmationStatus"`
}

// Failed reports whether the landed transaction failed.
func (s *SignatureStatus) Failed() bool { return len(s.Err) != 0 && string(s.Err) != "null" }

// SignatureStatus returns the status of a transaction, or nil when the
// endpoint has not seen it.
func (c *Client) SignatureStatus(ctx context.Context, sig string) (*SignatureStatus, error) {
	var r struct {
		Value []*SignatureStatus `json:"value"`
	}
	if err := c.Call(ctx, "getSignatureStatuses", []any{[]string{sig}, map[string]any{"searchTransactionHistory": true}}, &r); err != nil {
		return nil, err
	}
	if len(r.Value) != 1 {
		return nil, fmt.Errorf("getSignatureStatuses: %d statuses for one signature", len(r.Value))
	}
	return r.Value[0], nil
}

// Account is an account's state.
type Account struct {
	Lamports uint64
	Owner    string
	Data     []byte
}

// AccountInfo returns an account, or ErrNotFound.
func (c *Client) AccountInfo(ctx context.Context, addr string) (*Account, error) {
	var r struct {
		Value *struct {
			Lamports uint64    `json:"lamports"`
			Owner    string    `json:"owner"`
			Data     [2]string `json:"data"`
		} `json:"value"`
	}
	if err := c.Call(ctx, "getAccountInfo", []any{addr, map[string]any{"encoding": "base64", "commitment": c.commitment()}}, &r); err != nil {
		return nil, err
	}
	if r.Value == nil {
		return nil, fmt.Errorf("account %s: %w", addr, ErrNotFound)
	}
	data, err := base64.StdEncoding.DecodeString(r.Value.Data[0])
	if err != nil {
		return nil, fmt.Errorf("getAccountInfo: account data is not base64")
	}
	return &Account{Lamports: r.Value.Lamports, Owner: r.Value.Owner, Data: data}, nil
}

// TokenBalance returns a token account's balance in atomic units and the
// mint's decimals.
func (c *Client) TokenBalance(ctx context.Context, addr string) (amount uint64, decimals uint8, err error) {
	var r struct {
		Value struct {
			Amount   string `json:"amount"`
			Decimals uint8  `json:"decimals"`
		} `json:"value"`
	}
	if err := c.Call(ctx, "getTokenAccountBalance", []any{addr, map[string]any{"commitment": c.commitment()}}, &r); err != nil {
		return 0, 0, err
	}
	amount, err = strconv.ParseUint(r.Value.Amount, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("getTokenAccountBalance: amount %q", r.Value.Amount)
	}
	return amount, r.Value.Decimals, nil
}

// RequestAirdrop asks a test cluster for lamports (devnet, a local
// runtime) and returns the airdrop's signature.
func (c *Client) RequestAirdrop(ctx context.Context, addr string, lamports uint64) (string, error) {
	var sig string
	err := c.Call(ctx, "requestAirdrop", []any{addr, lamports}, &sig)
	return sig, err
}
