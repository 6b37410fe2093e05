// Package pg runs pg scopes on a gonode node: Go processes join and leave
// process groups that Erlang's pg and Elixir's :pg see on every node, and Go
// reads the groups' members, local and cluster-wide, and follows their
// changes.
//
//	scope, err := pg.Start(n, pg.DefaultScope, pg.Options{})
//	err = scope.Join(etf.Atom("jobs"), proc.Self())  // Elixir: :pg.get_members(:jobs) lists it
//	members := scope.Members(etf.Atom("jobs"))       // every node's members
//	changes, cancel := scope.Monitor(64)             // like pg:monitor_scope
//
// # The protocol
//
// A scope is a process registered under the scope's name on every node. On
// start, and when a node connects, it sends {discover, ScopePid} to the
// scope's name on that node. A scope that hears {discover, Peer} answers with
// a $gen_cast of {sync, ScopePid, [{Group, Pids}]} (its local members) and,
// the first time, monitors Peer and sends it {discover, ScopePid} too.
// Afterwards each local join and leave goes to every known peer scope as
// {join, ScopePid, Group, Pids} or {leave, ScopePid, Pids, Groups}; a member
// that exits leaves every group it joined, and a peer scope's DOWN (its
// process ended, or its node went down) drops all of that peer's members.
//
// OTP 27 and later also accept {discover, Peer, Version}, and OTP 29 speaks a
// version 1 with other messages to peers that announce it. The Go scope
// announces nothing: it sends only the version 0 messages above, which OTP
// 25, 27 and 29 all match (an OTP 29 scope answers such a peer in version 0),
// and it accepts both forms of discover. A BEAM scope crashes on a message it
// does not match (its last handle_info clause raises badarg), which would
// drop the registrations of its whole node: a property test
// (TestEverySentMessageIsInTheProtocol, FuzzScopeCore) checks that every
// message the Go scope sends is one of them.
//
// # Design
//
// The rules live in a core with no goroutine and no I/O (core.go): a step
// takes a message, a call or a DOWN and returns the messages to send, the
// processes to monitor or demonitor and the membership changes. The shell
// (Scope) runs the scope's process (a genserver.Server), holds one lock
// around the core and its effects, and sends only to connected nodes, as
// pg's erlang:send(..., [noconnect]).
//
// Everything peers send is untrusted: a message that is not of the protocol
// or has a bad field is dropped, counted (Observer.Dropped) and logged at a
// bounded rate, never a crash. Limits bound the peer scopes kept and the
// memberships one peer may announce.
//
// The node must be visible: BEAM scopes learn of nodes through
// net_kernel:monitor_nodes, which a hidden node does not trigger.
//
// Package pg imports node, node/genserver, node/term and internal/ratelog;
// node/pubsub and cmd/gonode import it; metrics implements its Observer
// without importing it.
package pg
