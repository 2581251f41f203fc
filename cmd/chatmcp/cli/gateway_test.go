package cli

import (
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/chatmcp/chatmcp/captoken"
)

// TestGatewayScripts runs the offline behaviour of the gateway client
// commands (token, approvals, tools, connect, dev): argument checks, trust
// refusals and offline attenuation. Behaviour against a running gateway is
// tested end to end in ./e2e.
func TestGatewayScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/gateway",
		Setup: func(e *testscript.Env) error {
			k, err := captoken.NewKey()
			if err != nil {
				return err
			}
			tok, err := captoken.Mint(k, captoken.Claims{ID: "00112233445566778899aabbccddeeff", Audience: "chatmcp-gateway:test", Tools: []string{"fs_*"}, Expires: time.Now().Add(time.Hour)})
			if err != nil {
				return err
			}
			e.Setenv("TOKEN", tok)
			return nil
		},
	})
}
