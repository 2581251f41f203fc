package cli

import "github.com/spf13/cobra"

// newAttestCmd is filled in by the attestation work (evidence, verify, inspect).
func newAttestCmd(env *Env) *cobra.Command {
	return &cobra.Command{Use: "attest", Short: "Produce, verify and inspect TEE attestation evidence"}
}
