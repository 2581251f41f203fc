package facilitator_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chatmcp/chatmcp/facilitator"
	"github.com/chatmcp/chatmcp/solrpc"
	"github.com/chatmcp/chatmcp/store/storetest"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/chatmcp/chatmcp/x402pay"
	"github.com/gagliardetto/solana-go"
)

// devnetUSDC is Circle's devnet USDC mint.
const devnetUSDC = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"

// TestDevnet settles one payment of 0.0001 devnet USDC on Solana devnet,
// then refuses its replay. It runs only when CHATMCP_DEVNET_RPC (an RPC
// URL), CHATMCP_DEVNET_PAYER (a keypair file holding devnet USDC in its
// associated token account), CHATMCP_DEVNET_FEE_PAYER (a keypair file
// holding devnet SOL) and CHATMCP_DEVNET_PAY_TO (an address whose devnet
// USDC account exists) are set.
func TestDevnet(t *testing.T) {
	rpcURL, payerFile, feeFile, payTo := os.Getenv("CHATMCP_DEVNET_RPC"), os.Getenv("CHATMCP_DEVNET_PAYER"), os.Getenv("CHATMCP_DEVNET_FEE_PAYER"), os.Getenv("CHATMCP_DEVNET_PAY_TO")
	if rpcURL == "" || payerFile == "" || feeFile == "" || payTo == "" {
		t.Skip("devnet test skipped: set CHATMCP_DEVNET_RPC, CHATMCP_DEVNET_PAYER, CHATMCP_DEVNET_FEE_PAYER and CHATMCP_DEVNET_PAY_TO to run it")
	}
	payer, err := wallet.LoadFile(payerFile)
	if err != nil {
		t.Fatal(err)
	}
	fee, err := wallet.LoadFile(feeFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rpc := &solrpc.Client{URL: rpcURL}
	fac, err := facilitator.New(ctx, storetest.SQLite(t), &facilitator.Options{Network: x402.SolanaDevnet, RPC: rpc, FeePayer: facilitator.WalletKey{Keypair: fee}})
	if err != nil {
		t.Fatal(err)
	}
	req := &x402.PaymentRequirements{Scheme: x402.SchemeExact, Network: x402.SolanaDevnet, Amount: "100", Asset: devnetUSDC,
		PayTo: payTo, MaxTimeoutSeconds: 60, Extra: &x402.Extra{FeePayer: fee.Address().String()}}
	p := &x402pay.Payer{RPC: rpc, Address: solana.PublicKeyFromBytes(payer.Address().PublicKey()), Signer: x402pay.WalletSigner{Keypair: payer},
		Network: x402.SolanaDevnet, Assets: []string{devnetUSDC}, MaxAmount: 100}
	pay, err := p.Pay(ctx, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := fac.Settle(ctx, pay, req)
	if !s.Success {
		t.Fatalf("settle on devnet: %s: %s", s.ErrorReason, s.ErrorMessage)
	}
	t.Logf("settled on devnet: %s", s.Transaction)
	if s2 := fac.Settle(ctx, pay, req); s2.Success || s2.ErrorReason != x402.ReasonDuplicateSettlement {
		t.Fatalf("replay on devnet: %+v", s2)
	}
}
