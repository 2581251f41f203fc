package cli

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/gagliardetto/solana-go"
	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/chat"
	"github.com/chatmcp/chatmcp/solrpc"
	"github.com/chatmcp/chatmcp/stamp"
	"github.com/chatmcp/chatmcp/wallet"
	"github.com/chatmcp/chatmcp/x402"
	"github.com/chatmcp/chatmcp/x402pay"
)

// chatPay are `chat send`'s flags for paying a recipient's price (x402)
// instead of minting proof of work.
type chatPay struct {
	rpc, network, max string
	assets            []string
}

func (p *chatPay) register(c *cobra.Command) {
	c.Flags().StringVar(&p.max, "pay-max", "", "pay a recipient's price for a first message, up to this many atomic units, from the chat wallet (default: proof of work only)")
	c.Flags().StringVar(&p.rpc, "pay-rpc", "", "Solana RPC URL to pay through (else $CHATMCP_PAY_RPC)")
	c.Flags().StringVar(&p.network, "pay-network", x402.SolanaDevnet, "the CAIP-2 network to pay on")
	c.Flags().StringSliceVar(&p.assets, "pay-asset", nil, "SPL mint the wallet pays in (repeatable; required with --pay-max)")
}

// payer is the chat client's StampPayer, or nil without --pay-max.
func (p *chatPay) payer(env *Env, w *wallet.Keypair) (chat.StampPayer, error) {
	if p.max == "" {
		return nil, nil
	}
	max, err := strconv.ParseUint(p.max, 10, 64)
	if err != nil || max == 0 {
		return nil, exitf(ExitUsage, "--pay-max must be a positive amount in atomic units, not %q", p.max)
	}
	rpc := firstNonEmpty(p.rpc, env.getenv("CHATMCP_PAY_RPC"))
	if rpc == "" {
		return nil, &ExitError{Code: ExitUsage, Err: errors.New("--pay-max needs a Solana RPC URL"), Hint: "pass --pay-rpc or set CHATMCP_PAY_RPC"}
	}
	if _, err := x402.ParseNetwork(p.network); err != nil {
		return nil, exitf(ExitUsage, "--pay-network: %w", err)
	}
	if len(p.assets) == 0 {
		return nil, exitf(ExitUsage, "--pay-max needs --pay-asset MINT: the mint(s) the wallet pays in")
	}
	return &x402pay.Payer{RPC: &solrpc.Client{URL: rpc}, Address: solana.PublicKeyFromBytes(w.Address().PublicKey()),
		Signer: x402pay.WalletSigner{Keypair: w}, Network: p.network, Assets: p.assets, MaxAmount: max}, nil
}

// newChatPriceCmd is `chatmcp chat price`.
func newChatPriceCmd(env *Env, f *chatFlags) *cobra.Command {
	var price stamp.Price
	var none bool
	c := &cobra.Command{
		Use:   "price (--amount N --asset MINT [--network CAIP2] | --none)",
		Short: "Let strangers pay you (x402, Solana) instead of proof of work for a first message",
		Long: `Publish a price strangers may pay you, instead of minting proof of work, for a first
message: an x402 'exact' transfer of --amount atomic units of the SPL mint --asset to
your wallet's token account, settled by the relay's facilitator before the message is
stored. Proof of work stays accepted (raise 'chatmcp chat difficulty' to make paying the
cheaper way). The relay must take payments (chatmcp-relay --facilitator).`,
		Example: `  chatmcp chat price --amount 50000 --asset 4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU   # 0.05 devnet USDC
  chatmcp chat price --none`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p *stamp.Price
			switch {
			case none && (price.Amount != "" || price.Asset != ""):
				return exitf(ExitUsage, "--none takes no --amount or --asset")
			case !none:
				if err := price.Validate(); err != nil {
					return exitf(ExitUsage, "%w", err)
				}
				p = &price
			}
			c, err := f.client(env)
			if err != nil {
				return err
			}
			if err := c.SetPrice(cmd.Context(), p); err != nil {
				return chatErr(err)
			}
			if p == nil {
				fmt.Fprintln(env.Stdout, "price removed: strangers mint proof of work")
			} else {
				fmt.Fprintf(env.Stdout, "price set: %s of %s on %s\n", p.Amount, p.Asset, p.Network)
			}
			return nil
		},
	}
	c.Flags().StringVar(&price.Amount, "amount", "", "price in atomic units of the asset")
	c.Flags().StringVar(&price.Asset, "asset", "", "SPL mint address")
	c.Flags().StringVar(&price.Network, "network", x402.SolanaDevnet, "CAIP-2 network")
	c.Flags().BoolVar(&none, "none", false, "remove the price")
	return c
}
