package main

import (
	"sync/atomic"

	"github.com/gonode/gonode/node"
)

// nodeState is the metrics.NodeState of a node that run starts and stops:
// Started is true from the end of a successful Start to the beginning of
// Stop.
type nodeState struct {
	*node.Node
	up atomic.Bool
}

func (s *nodeState) Started() bool { return s.up.Load() }
