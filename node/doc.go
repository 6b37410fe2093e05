// Package node runs an Erlang distribution node in Go: the part of gonode that
// Elixir and Erlang nodes see as a peer.
//
// A Node is built from a plain-data Config (DefaultConfig, Validate) with New,
// then Start-ed: it listens for distribution connections, registers with EPMD
// according to Config.EPMD, and starts its built-in processes:
//
//   - `gonode`, a gen_server answering `ping` with `pong`, `info` with a map of
//     the node's name, version, uptime and peers, and `{call, To, Msg}` by
//     calling To from the Go node: `{ok, Reply}`, or `{error, Reason}` with
//     the reason gen_server:call would exit with, as a term (noproc,
//     {nodedown, Node}, the callee's exit reason, timeout) (see ServerName);
//   - `net_kernel`, answering net_adm:ping.
//
// User code registers its own gen_servers with RegisterServer (NewServer's
// typed handlers: Go functions on Go types, chosen by the message's tag;
// node/genserver's Server, whose callbacks take and return terms; or ergo's
// gen.Server), calls Erlang processes with Call, or CallInto for the reply
// as a Go value (each call from a short-lived genserver process), connects and
// disconnects peers, and follows peer up/down Events with Subscribe. A
// failed connection says why (ErrNotRegistered, ErrBadCookie,
// ErrHostUnreachable, ErrNotAllowed, ErrConnectTimeout, checked with
// errors.Is on Connect's and Call's errors; ConnectFailures).
// Registered servers run under a restart policy (ServerOptions.Restart:
// Permanent, Transient, Temporary, with a restart intensity, supervise.go).
// Code outside any process sends with Send, monitors with Monitor (a Down
// whose Reason is a term, ReasonText its Erlang text) and links with Link
// (remote.go). Node satisfies discovery's Connector interface (Connect,
// Disconnect, Connected) without importing it.
//
// ergo (github.com/ergo-services/ergo v1.999.221) is the process runtime. Its
// distribution layer is replaced in one place, wire.go: the handshake, the
// connection protocol and the term codec are gonode's own (subpackages dist
// and term), and the registrar is built on package epmd. The node starts no
// ergo application, so nothing phones home (ergo's anonymous usage metrics)
// and every process gets Config.MailboxSize. The package changes no
// process-wide state on its own: with WithErgoLogs (cmd/gonode sets it),
// ergo's warnings, including a message dropped at a full mailbox, are routed
// to slog and the Observer, which replaces the log package's output.
//
// The cookie is a Cookie, whose String and LogValue redact it: it never
// appears in a log line or an error returned by this package.
//
// A server needs only this package: vocab.go re-exports the term types
// (Term, Atom, Tuple, List, Pid, Ref, Map), ProcessID and Name, Process,
// Marshal, Unmarshal and Format.
//
// node may import epmd, node/dist, node/term, node/genserver,
// node/internal/typedterm and ergo;
// discovery, metrics and cmd/gonode import node, never the reverse.
package node
