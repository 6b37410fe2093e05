package node_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/node"
)

// A Go function callable from Elixir as
//
//	:erpc.call(:"api@127.0.0.1", MyApp.Api, :greet, ["Ann"])  #=> "Hello, Ann"
//	:rpc.call(:"api@127.0.0.1", MyApp.Api, :greet, [42])      #=> {:badrpc, {:EXIT, {:badarg, [{MyApp.Api, :greet, 1, []}]}}}
//
// Functions can be provided before or after Start.
func ExampleNode_ProvideRPC() {
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = "api@127.0.0.1", "secret"
	n, err := node.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	greet := func(ctx context.Context, args []etf.Term) (etf.Term, error) {
		if len(args) == 1 {
			if name, ok := args[0].([]byte); ok { // an Elixir string is a binary
				return []byte("Hello, " + string(name)), nil
			}
		}
		// error(badarg) in the caller, as a BEAM function would raise.
		return nil, &node.RPCException{Class: node.RPCError, Reason: etf.Atom("badarg")}
	}
	err = n.ProvideRPC("Elixir.MyApp.Api", "greet", greet, node.WithRPCTimeout(5*time.Second))
	fmt.Println("provided:", err)

	err = n.ProvideRPC("Elixir.MyApp.Api", "greet", greet)
	fmt.Println("again:", errors.Is(err, node.ErrRPCExists))

	fmt.Println("revoked:", n.RevokeRPC("Elixir.MyApp.Api", "greet"))
	// Output:
	// provided: <nil>
	// again: true
	// revoked: <nil>
}
