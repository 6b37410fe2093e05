package node

import (
	"context"
	"fmt"

	"github.com/gonode/gonode/internal/ratelog"
	"github.com/gonode/gonode/node/internal/typedterm"
	"github.com/gonode/gonode/node/term"
)

// CallInto is Call for Go values: msg is marshalled as Marshal does (a Go
// string, also inside a Tuple, goes as an Elixir string), and the reply is
// unmarshalled into out, a non-nil pointer, as Unmarshal does (a struct
// takes an Elixir map or struct):
//
//	var p Price
//	err := n.CallInto(ctx, node.Name("pricing", peer), node.Tuple{node.Atom("price"), "sku-1"}, &p)
//
// Its errors are Call's, or a marshalling error naming the reply.
func (n *Node) CallInto(ctx context.Context, to any, msg any, out any) error {
	m, err := typedterm.Encode(msg)
	if err != nil {
		return fmt.Errorf("call %v: message: %w", to, err)
	}
	reply, err := n.Call(ctx, to, m)
	if err != nil {
		return err
	}
	if err := typedterm.Into(reply, out); err != nil {
		return fmt.Errorf("call %v: reply %s: %w", to, ratelog.Truncate(term.Format(reply), 200), err)
	}
	return nil
}
