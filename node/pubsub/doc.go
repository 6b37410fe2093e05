// Package pubsub makes a gonode node a member of Phoenix.PubSub servers
// (phoenix_pubsub 2.x with its default adapter, Phoenix.PubSub.PG2): Go
// subscribes to topics and receives what Elixir broadcasts on any node, and
// Go broadcasts reach Elixir subscribers on every node, or on one.
//
//	scope, _ := pg.Start(n, pubsub.Scope, pg.Options{})
//	ps, _ := pubsub.Start(n, scope, "MyApp.PubSub", pubsub.Options{PoolSize: 1})
//	sub, _ := ps.Subscribe("orders")
//	for m := range sub.C() { var o Order; _ = m.Unmarshal(&o, term.WithStructName("Elixir.MyApp.Order")) }
//	_ = ps.Broadcast("orders", order)   // Phoenix.PubSub.broadcast(MyApp.PubSub, "orders", order)
//
// # How the adapter works, and what Go does
//
// The PG2 adapter of a server named MyApp.PubSub runs, on each node, one
// worker per pool group, registered under the group's name and joined to
// that group in the pg scope Phoenix.PubSub. The groups are the adapter name
// MyApp.PubSub.Adapter, then MyApp.PubSub.Adapter_2 to _N for pool_size N
// (Groups). A broadcast sends {:forward_to_local, topic, message,
// dispatcher} to every member, not on the sender's node, of one group (picked
// by a hash of the sender's pid among the first broadcast_pool_size groups),
// then dispatches locally; a worker that receives it dispatches to its node's
// subscribers. direct_broadcast sends the same tuple to {group, node}.
//
// Start runs the same workers on the Go node, so Elixir broadcasts reach
// them; each hands the message to the Go subscriptions of its topic. One
// sender's broadcasts go through one group, hence one worker, and arrive in
// the order sent. Go's Broadcast sends through the first group (every node
// runs it) and dispatches to the local subscriptions; DirectBroadcast sends
// to one node's first worker; LocalBroadcast stays on this node. The
// dispatcher Go names is Phoenix.PubSub's default; custom dispatchers named
// by Elixir senders are not run on the Go side (Go subscribers receive every
// message of their topic).
//
// Local subscribers receive the term as given (after term.Marshal): a Go int
// stays an int, while a peer receives the integer as an Erlang integer
// (int64 on a Go peer).
//
// A subscription queues what its reader has not taken yet, up to
// Options.MaxQueued messages; beyond that a message is dropped and counted
// (Observer.Dropped), never blocking the worker.
//
// The tests run an Elixir stand-in of phoenix_pubsub 2.2.0
// (testdata/phoenix_pubsub.ex), since Hex packages cannot be installed
// where they run.
//
// Package pubsub imports node, node/pg, node/genserver, node/term and
// internal/ratelog.
package pubsub
