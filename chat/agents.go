package chat

import (
	"context"
	"errors"
	"fmt"

	"github.com/chatmcp/chatmcp/agentapi"
	"github.com/chatmcp/chatmcp/attest"
	"github.com/chatmcp/chatmcp/envelope"
	"github.com/chatmcp/chatmcp/wallet"
)

// Agents in conversations. An agent (chatmcp-agent) is a member whose
// device certificates carry evidence (envelope.DeviceCert.Evidence): TEE
// evidence binding the device's keys and the agent's configuration
// (agentapi.Evidence). This client wraps a content key to such a device
// only when that evidence satisfies its agent policy (Options.AgentPolicy),
// and otherwise withholds the key and says so (Sent.Withheld). A member
// one of whose devices carries evidence is an agent: each of its devices
// must then carry evidence that passes, so an agent's wallet cannot read
// through a side device that claims to be a person's.

// ErrAgentRefused marks a send or an invitation refused because an agent's
// evidence fails the client's agent policy.
var ErrAgentRefused = errors.New("agent evidence refused")

// Withheld is an agent device that got no content key, and why.
type Withheld struct {
	Wallet wallet.Address `json:"wallet"`
	Device string         `json:"device"`
	Reason string         `json:"reason"`
}

// AgentDevice is an agent device whose evidence verified.
type AgentDevice struct {
	Cert     envelope.DeviceCert
	Evidence *agentapi.Evidence
	Claims   *attest.Claims
}

// VerifyAgentDevice verifies the evidence cert carries against policy (if
// nil, Options.AgentPolicy), at the client's clock: it parses the
// evidence, checks that its report data binds cert's keys and the
// configuration it carries, and evaluates the policy. The error names the
// failed check (an *agentapi.Error).
func (c *Client) VerifyAgentDevice(ctx context.Context, cert *envelope.DeviceCert, policy *attest.Policy) (*AgentDevice, error) {
	if policy == nil {
		policy = c.opts.AgentPolicy
	}
	if !cert.HasEvidence() {
		return nil, &agentapi.Error{Check: agentapi.CheckEvidence, Msg: "device " + cert.Device + " publishes no evidence"}
	}
	ev, err := agentapi.ParseEvidence(cert.Evidence)
	if err != nil {
		return nil, err
	}
	claims, err := ev.Verify(ctx, &agentapi.VerifyOptions{Checker: c.opts.AgentChecker, Policy: policy,
		SigningKey: cert.Signing, HPKEKey: cert.HPKE, Now: c.opts.Now()})
	if err != nil {
		return nil, err
	}
	return &AgentDevice{Cert: *cert, Evidence: ev, Claims: claims}, nil
}

// keyable splits member m's devices into those that may get a content key
// and those withheld. A member none of whose devices carries evidence is a
// person: every device gets a key. The client's own wallet is not checked.
func (c *Client) keyable(ctx context.Context, m wallet.Address, devs []envelope.DeviceCert) (ok []envelope.DeviceCert, no []Withheld) {
	agent := false
	for i := range devs {
		agent = agent || devs[i].HasEvidence()
	}
	if !agent || m.Equal(c.Address()) {
		return devs, nil
	}
	for i := range devs {
		if _, err := c.VerifyAgentDevice(ctx, &devs[i], nil); err != nil {
			no = append(no, Withheld{Wallet: m, Device: devs[i].Device, Reason: "agent device " + devs[i].Device + ": " + err.Error()})
			continue
		}
		ok = append(ok, devs[i])
	}
	return ok, no
}

// InspectAgent fetches a's published devices and verifies each one's
// evidence against policy (if nil, Options.AgentPolicy). It fails, naming
// the device and the failed check, when a has no device or any of its
// devices fails: an agent is invited only when every device that could
// read the conversation passes.
func (c *Client) InspectAgent(ctx context.Context, a wallet.Address, policy *attest.Policy) ([]AgentDevice, error) {
	u, err := c.User(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("looking up %s: %w", a, err)
	}
	if len(u.Devices) == 0 {
		return nil, fmt.Errorf("%s has no devices on this relay: %w", a, ErrAgentRefused)
	}
	var out []AgentDevice
	for i := range u.Devices {
		d, err := c.VerifyAgentDevice(ctx, &u.Devices[i], policy)
		if err != nil {
			return nil, fmt.Errorf("agent device %s: %w: %w", u.Devices[i].Device, err, ErrAgentRefused)
		}
		out = append(out, *d)
	}
	return out, nil
}

// PublishEvidence attaches ev (an encoded agentapi.Evidence) to this
// device's certificate and signs in again, so that the relay publishes it
// with the device. The evidence is kept in memory only, never under Home:
// an agent attests at every start.
func (c *Client) PublishEvidence(ctx context.Context, ev []byte) error {
	if len(ev) == 0 {
		return errors.New("publishing evidence: no evidence")
	}
	prev := c.device.Cert.Evidence
	c.device.Cert.Evidence = append([]byte(nil), ev...)
	if err := c.device.Cert.Verify(); err != nil {
		c.device.Cert.Evidence = prev
		return fmt.Errorf("publishing evidence: %w", err)
	}
	if err := c.Login(ctx); err != nil {
		return fmt.Errorf("publishing evidence: %w", err)
	}
	return nil
}
