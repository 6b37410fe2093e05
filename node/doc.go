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
// User code registers its own gen_servers with RegisterServer (ergo's
// gen.Server, or node/genserver's Server, which runs its callbacks in the
// process loop for lower call latency), calls Erlang processes with Call
// (each call from a short-lived genserver process), connects and
// disconnects peers, and follows peer up/down Events with Subscribe. A
// failed connection says why (ErrNotRegistered, ErrBadCookie,
// ErrHostUnreachable, ErrNotAllowed, ErrConnectTimeout, checked with
// errors.Is on Connect's and Call's errors; ConnectFailures). Node
// satisfies discovery's Connector interface (Connect, Disconnect, Connected)
// without importing it.
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
// node may import epmd, node/dist, node/term, node/genserver and ergo;
// discovery, metrics and cmd/gonode import node, never the reverse.
package node
