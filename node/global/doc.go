// Package global runs global's name server on a gonode node: BEAM nodes
// count the node as in sync (global:sync/0 and global:trans/4 return while
// it is connected), Go registers its processes under global names that
// Elixir's {:global, Name} finds, and Go resolves, sends to and calls
// names registered on any node.
//
//	gs, err := global.Start(n, global.Options{})
//	ok, err := gs.Register(ctx, etf.Atom("inventory"), proc.Self()) // false: taken (:no)
//	pid, found := gs.Whereis(etf.Atom("pricing"))
//	reply, err := gs.Call(ctx, etf.Atom("pricing"), etf.Atom("price"))
//
// # The protocol
//
// global's process is registered as global_name_server on every node. When
// two nodes connect, each sends the other {init_connect, {8, Tag}, Node,
// {locker, _, _, LockerPid}} and acknowledges the other's with
// init_connect_ack. One side's locker then sets global's lock on both
// partitions (set_lock calls to every name server) and sends lock_set to
// the other, which answers lock_set; both send their names (exchange),
// compare them with their own, send each other what to change (resolved)
// and, once both have it, count each other as in sync. The nodes the peer
// knows are told in_sync; the peer's known nodes hear of the new node in
// new_nodes. Registrations are calls to every name server in sync
// (register, unregister) under the lock {global, Registrar}.
//
// This node speaks version 8 of that protocol, the one OTP 25, 27 and 29
// speak (the node-connect messages did not change between them). Its part
// in a connect is the answering one: it never starts a lock itself; a BEAM
// node's locker asks for it, and this node grants it unless another
// connect holds global's lock here (the locker retries later). It answers
// with an empty list of known nodes, so a peer syncs with it alone; in a
// full mesh every BEAM node syncs with it directly. Two gonodes with no
// BEAM node between them therefore never sync with each other (neither
// starts the lock).
//
// Name clashes found in an exchange are resolved by the node of lower name,
// as OTP does, with global's default rule (random_exit_name): the process
// of the lower node keeps the name and the other is killed (a BEAM loser
// through its node's rex, as an rpc:cast of erlang:exit/2). A custom
// resolve function given to global:register_name/3 is not run by this
// node when it is the resolving side: the default rule applies.
//
// With prevent_overlapping_partitions, a node that loses a connection
// sends {lost_connection, NodeA, Creation, OpId, NodeB} to the nodes it
// knows; this node then asks the lost node to disconnect from it
// ({remove_connection, Node}) and stops counting it as in sync, once per
// notice, and disconnects from a node that asks it to. It never sends the
// notice itself.
//
// Everything a peer sends is bounded (Limits), checked before use, and a
// message that does not fit is dropped, counted (Observer.Dropped) and
// logged at a limited rate; the process never crashes on it.
package global
