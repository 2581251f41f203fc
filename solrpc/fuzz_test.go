package solrpc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chatmcp/chatmcp/solrpc"
)

// FuzzAnswers: whatever an RPC endpoint answers, every method returns a
// value or an error, and never panics.
func FuzzAnswers(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{"context":{"slot":1},"value":{"blockhash":"x","lastValidBlockHeight":1}}}`,
		`{"jsonrpc":"2.0","id":1,"result":"sig"}`,
		`{"jsonrpc":"2.0","id":1,"result":{"value":[null]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"value":{"lamports":1,"owner":"o","data":["AA==","base64"]}}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"value":{"amount":"12","decimals":6}}}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32002,"message":"Transaction simulation failed","data":{"err":"x"}}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"value":{"err":{"InstructionError":[2,{"Custom":1}]},"logs":[],"unitsConsumed":5}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(answer) }))
		defer srv.Close()
		c := &solrpc.Client{URL: srv.URL}
		ctx := context.Background()
		c.LatestBlockhash(ctx)
		c.SendTransaction(ctx, []byte{1})
		if s, err := c.SimulateTransaction(ctx, []byte{1}, false); err == nil {
			s.Failed()
		}
		if st, err := c.SignatureStatus(ctx, "s"); err == nil && st != nil {
			st.Failed()
		}
		c.AccountInfo(ctx, "a")
		c.TokenBalance(ctx, "a")
		c.RequestAirdrop(ctx, "a", 1)
	})
}
