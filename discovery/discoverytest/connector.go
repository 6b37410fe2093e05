package discoverytest

import (
	"context"
	"slices"
	"sync"

	"github.com/gonode/gonode/discovery"
)

// Call is one call a Connector received.
type Call struct {
	Op   discovery.ActionKind
	Node string
}

// Connector is an in-memory discovery.Connector. By default every Connect
// succeeds at once; Fail makes a node's connects fail, Hold makes connects
// wait until Release or their context ends (an unreachable peer).
type Connector struct {
	mu          sync.Mutex
	connected   map[string]bool
	fail        map[string]error
	gate        chan struct{}
	calls       []Call
	inflight    int
	maxInflight int
}

// NewConnector returns a Connector with nobody connected.
func NewConnector() *Connector {
	return &Connector{connected: map[string]bool{}, fail: map[string]error{}}
}

// Fail makes connects to node return err; a nil err makes them succeed again.
func (c *Connector) Fail(node string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		delete(c.fail, node)
		return
	}
	c.fail[node] = err
}

// Hold makes every Connect wait until Release or its context ends.
func (c *Connector) Hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gate == nil {
		c.gate = make(chan struct{})
	}
}

// Release lets held Connects go on.
func (c *Connector) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gate != nil {
		close(c.gate)
		c.gate = nil
	}
}

// Drop disconnects node as if the peer went away.
func (c *Connector) Drop(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.connected, node)
}

// Inbound marks node connected as if it had connected to us.
func (c *Connector) Inbound(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.connected[node] = true
}

// Connect implements discovery.Connector.
func (c *Connector) Connect(ctx context.Context, node string) error {
	c.mu.Lock()
	c.calls = append(c.calls, Call{discovery.ActConnect, node})
	c.inflight++
	c.maxInflight = max(c.maxInflight, c.inflight)
	gate := c.gate
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inflight--
		c.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fail[node]; err != nil {
		return err
	}
	c.connected[node] = true
	return nil
}

// Disconnect implements discovery.Connector.
func (c *Connector) Disconnect(node string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, Call{discovery.ActDisconnect, node})
	delete(c.connected, node)
	return nil
}

// Connected implements discovery.Connector; the names are sorted.
func (c *Connector) Connected() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.connected))
	for n := range c.connected {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// IsConnected reports whether node is connected.
func (c *Connector) IsConnected(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected[node]
}

// Calls returns every call so far, in order.
func (c *Connector) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call(nil), c.calls...)
}

// Count returns how many calls of op to node were made.
func (c *Connector) Count(op discovery.ActionKind, node string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.calls {
		if k.Op == op && k.Node == node {
			n++
		}
	}
	return n
}

// InFlight returns how many Connects are running now, and the most that ran
// at once so far.
func (c *Connector) InFlight() (now, peak int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight, c.maxInflight
}
