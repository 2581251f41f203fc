// Package assistant tests the attested assistant end to end (issue 11 item
// 7): real daemons on loopback (devstack: KBS, gateway with the notes
// upstream, relay; the INSECURE simulated TEE), a real chatmcp-agent
// (agenttest) on the TINY TEST MODEL of ../shared/llm (internal/tinyllm),
// and people using the chatmcp CLI in-process. One stack serves every case,
// in order, to keep the number of model calls small. The tiny model picks
// tools reliably but garbles argument values and reply text: the tests
// assert on which tool was called and how, never on values or text.
package assistant
