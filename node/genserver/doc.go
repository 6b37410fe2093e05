// Package genserver is a gen_server behaviour for gonode that runs its
// callbacks inline: in the process's own loop goroutine, or in the
// connection reader that decoded the message.
//
// ergo's gen.Server starts a new goroutine for every message it handles and
// waits for it, so a gen_server:call from a BEAM node crosses four
// goroutines on the Go side (the connection reader, the process loop, the
// callback goroutine, the connection writer). Server drops the third: its
// ProcessLoop calls HandleCall, HandleCast, HandleInfo and HandleDirect
// directly, which is what a BEAM process does. BENCHMARKS.md ("gen_server:call
// latency") has the numbers.
//
// A message from another node goes further: node/dist's connection reader
// queues it in the process's inbox (EnqueueRemote) and, when no callback of
// the process is running, runs the callback itself (RunRemote), and the
// reply leaves from that goroutine too, so a call from a BEAM node crosses
// no goroutine on the Go side. inline.go states the rules that keep the
// semantics below: one callback at a time (a mutex), one inbox in arrival
// order, backpressure at the process's mailbox size.
//
// # Callbacks
//
// The callback shape is gen.Server's, with *Process in place of
// *gen.ServerProcess, and the same status values (gen.ServerStatusOK,
// gen.ServerStatusIgnore, gen.ServerStatusStop, any other error as the exit
// reason; gen.DirectStatusOK, gen.DirectStatusIgnore). Embed Server in a
// struct and override the callbacks you need; the others do nothing (and
// an unhandled call or direct request is answered with an error).
//
// A $gen_call is answered the way OTP's gen_server answers it: to the
// caller's pid as {Ref, Reply} when the tag is a reference, to the alias as
// {[alias|Ref], Reply} when the tag is OTP 24+'s [alias|Ref] (Erlang's
// gen_server:call and Elixir's GenServer.call use that form).
//
// # Typed handlers
//
// TypedServer (NewServer; node.NewServer) is a Server whose calls, casts
// and infos are handled by Go functions on Go types, chosen by the
// message's tag ({:get, sku} runs the "get" handler with sku unmarshalled
// into its parameter), with the reply marshalled from its results. It runs
// on the same inline path. See TypedServer for the rules.
//
// # Limits and semantics
//
//   - Callbacks run one at a time, on the process goroutine or a connection
//     reader's; a callback that blocks blocks the server, as in Erlang (not
//     the connection: another goroutine takes its reading over). Never call Process.Direct on
//     your own process from a callback (ergo would wait for a loop that is
//     busy running you).
//   - Process.Call makes a nested gen_server call from inside a callback
//     and waits for the reply selectively: other messages and direct
//     requests that arrive meanwhile are kept, in order, and handled after
//     the callback returns. Like gen_server:call it monitors the callee
//     (a pid, a name, or {Name, Node}) for the length of the call. The
//     wait ends with the reply; with a *DownError (errors.Is
//     ErrServerDown) whose Reason is the monitor's: "noproc" for a name
//     nobody registered, "noconnection" when the callee's node is not
//     connected or goes down, or the callee's exit reason; at the timeout
//     (ErrCallTimeout); or when the process is told to stop (ErrStopping;
//     the stop then takes effect). After the reply the monitor is removed
//     and a DOWN already on its way is dropped, as demonitor(Ref, [flush])
//     does. A reply that arrives after its Call timed out reaches
//     HandleInfo as {Ref, Reply} (as in an OTP gen_server whose call used a
//     plain reference).
//   - A callback that panics, or returns an error status other than
//     gen.ServerStatusStop, ends the process with that reason; ergo then
//     sends the exit to links and the DOWN to monitors, so an Erlang or
//     Elixir gen_server:call in progress exits with the reason as it does
//     when an OTP gen_server crashes. A panic's reason carries its value,
//     {panic, <<"runtime error: index out of range [3] with length 1">>}
//     (in Erlang syntax, as exit reasons are kept: term.Format), and one
//     log line at error level gives the value, the stack, the callback,
//     the process's name and pid (to the logger under EnvLogger, which
//     package node sets to its own). The panic is not re-raised; a panic
//     in Init fails the spawn with an error that carries its value.
//   - A HandleCall reply that cannot be encoded for a caller on another
//     node (a Go map, a plain struct, a chan: see package term for the Go
//     types a term may hold) ends the process with {bad_reply, <<"name:
//     cannot encode reply of Go type map[string]int: ...">>}, logged once:
//     the caller exits with that reason at once instead of waiting for its
//     timeout. The check is the encoding itself (in the send), so replies
//     that encode cost nothing more. A local caller gets the Go value.
//   - A type that embeds Server but declares a callback with another
//     signature (ergo's gen.Server one, say) compiles, as its method hides
//     Server's, and is not a Behavior: spawning it fails with an error
//     (CheckBehavior) that names each such method, its signature and the
//     one expected.
//   - Exit signals: with trap-exit on, an exit arrives at HandleInfo as
//     gen.MessageExit; otherwise Terminate runs and the process ends.
//
// # Imports
//
// genserver imports ergo's gen, etf and lib packages, node/term (exit reasons
// in Erlang syntax, TypedServer's conversions), node/internal/typedterm and
// internal/ratelog; package node accepts a Server (and a TypedServer) in
// RegisterServer.
package genserver
