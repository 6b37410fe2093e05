package dist

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/lib"
)

// ConnectedNodes is the part of ergo's node.Node that NodeConnections uses.
type ConnectedNodes interface {
	// Nodes lists the nodes with an established connection.
	Nodes() []string
	// Disconnect closes the connection to a node.
	Disconnect(node string) error
}

// NodeConnections adapts an ergo node to Connections. The handshake has to
// be configured before the ergo node that uses it exists, so the node is
// bound later with Bind; until then NodeConnections knows no connection.
// The zero value is ready to use.
type NodeConnections struct {
	n atomic.Pointer[hsBoundNodes]
	// PollInterval is how often Disconnect looks whether the connection is
	// gone: ergo offers no notification without a process. Zero means 5 ms.
	PollInterval time.Duration
}

type hsBoundNodes struct{ ConnectedNodes }

var _ Connections = (*NodeConnections)(nil)

// Bind sets the node whose connections are reported.
func (c *NodeConnections) Bind(n ConnectedNodes) { c.n.Store(&hsBoundNodes{n}) }

// Connected implements Connections.
func (c *NodeConnections) Connected(node string) bool {
	b := c.n.Load()
	return b != nil && slices.Contains(b.Nodes(), node)
}

// Disconnect implements Connections: it closes the connection to node and
// waits until ergo no longer lists it.
func (c *NodeConnections) Disconnect(ctx context.Context, node string) error {
	b := c.n.Load()
	if b == nil {
		return nil
	}
	if err := b.Disconnect(node); err != nil && !errors.Is(err, lib.ErrNoRoute) {
		return fmt.Errorf("disconnect %s: %w", node, err)
	}
	every := c.PollInterval
	if every <= 0 {
		every = 5 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for slices.Contains(b.Nodes(), node) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the connection to %s is still up: %w", node, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
