package cli

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chatmcp/chatmcp/wallet"
)

// newWalletCmd is the `chatmcp wallet` group: Solana keypair files.
func newWalletCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wallet",
		Short: "Create and inspect Solana wallet keypair files",
		Long: `Create and inspect Solana wallet keypair files in solana-keygen's format
(a JSON array of 64 bytes: the ed25519 seed, then the public key). A ChatMCP
identity is the wallet's base58 address.`,
	}
	var out string
	newCmd := &cobra.Command{
		Use:     "new -o FILE",
		Short:   "Generate a new wallet keypair file (mode 0600) and print its address",
		Example: "  chatmcp wallet new -o alice.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return &ExitError{Code: ExitUsage, Err: errors.New("-o FILE is required"), Hint: "chatmcp wallet new -o wallet.json"}
			}
			k, err := wallet.Generate(rand.Reader)
			if err != nil {
				return exitf(ExitUsage, "%w", err)
			}
			if err := k.WriteFile(out); err != nil {
				return exitf(ExitUsage, "%w", err)
			}
			fmt.Fprintln(env.Stdout, k.Address())
			return nil
		},
	}
	newCmd.Flags().StringVarP(&out, "output", "o", "", "keypair file to create (refuses to overwrite)")
	addrCmd := &cobra.Command{
		Use:     "address FILE",
		Short:   "Print the base58 address of a keypair file",
		Example: "  chatmcp wallet address ~/.config/solana/id.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := wallet.LoadFile(args[0])
			if err != nil {
				return exitf(ExitInvalid, "%w", err)
			}
			fmt.Fprintln(env.Stdout, k.Address())
			return nil
		},
	}
	cmd.AddCommand(newCmd, addrCmd)
	return cmd
}
