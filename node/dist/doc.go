// Package dist is gonode's Erlang distribution wire layer for ergo's process
// runtime: the version 6 handshake (Handshake, for ergo's
// node.Options.Handshake) and the protocol between connected nodes (Proto,
// for node.Options.Proto). It replaces ergo's own, which OTP 26+ refuses and
// which loses or reorders messages (see docs/interop-notes.md).
//
// # Incoming connections
//
// ergo's accept loop runs each incoming handshake to its end before it
// accepts the next connection, so a single peer that connects and says
// nothing would keep every other out. Handshake.Serve therefore owns the
// distribution port: it runs every incoming handshake in a goroutine of its
// own, each message due within HandshakeConfig.StepTimeout, at most
// MaxPending at once (MaxPendingPerAddr from one IP address), and closes at
// once, unheard, the connections of an address whose handshakes keep
// failing (FailureBurst, FailureInterval). A completed handshake is handed
// to ergo through ergo's own listener, bound to the loopback interface:
// Serve connects to it and ergo's Accept answers with the details Serve
// filed for that connection; Proto.Init then serves the peer's connection
// in its place (acceptor.go). Outgoing handshakes run in the goroutine of
// each connect and were never serialised: Start on a connection ergo
// dialled, or Dial, which dials itself and hands the connection on the same
// way (package node dials through it, so that ergo never sees a failure).
//
// # TLS
//
// With HandshakeConfig.TLS, every connection runs over TLS as with OTP's
// inet_tls_dist (tls.go): the handshake starts with a TLS handshake, as
// server in Serve (or Accept) and as client in Start, within the same
// bounds as the distribution handshake, which then runs inside it with
// 4-byte message lengths (inet_tls_dist's socket uses {packet, 4}, plain
// TCP {packet, 2}). The details carry the TLS connection, which Proto.Init
// serves instead of the one ergo holds: ergo dials and accepts plain TCP
// only (its own TLS stays off) and closing its connection ends the TLS one.
// A failed TLS handshake, or a plain handshake that meets a TLS peer, is
// ErrTLS and ResultTLS.
//
// # Connection protocol
//
// Proto implements ergo's node.ProtoInterface. Init reads the Peer the
// handshake left in HandshakeDetails.Custom and starts nothing; Serve runs
// the connection until it fails; ergo then routes the node-down.
//
// Each connection has exactly one reader at a time and one writer:
//
//   - The reader reads 4-byte length-prefixed frames, reassembles
//     fragments, decodes the control message and payload with package term,
//     and routes each message before reading the next: to ergo's
//     node.CoreRouter, or, for a process whose behaviour allows it
//     (node/genserver's Server), into the process's own queue, running its
//     callback on the reader's goroutine when the process is idle (inline
//     delivery, inline.go). Erlang's guarantee that signals between two
//     processes arrive in order therefore holds. When a reader has run
//     callbacks for a few milliseconds, a new goroutine takes the reading
//     role over, so a callback that blocks does not stop the connection.
//     A message for a process whose mailbox (or inline queue) is full waits
//     in the connection's overflow (overflow.go), with every later message
//     to that process, and the reader goes on with the others; when the
//     overflow holds ProtoConfig.MaxOverflowBytes the reader waits, so TCP
//     holds the peer's sender back, instead of dropping the message.
//   - The writer goroutine drains a queue that every sending goroutine fills
//     with already-encoded frames, through a 64 KiB buffer flushed when the
//     queue is empty: a burst leaves in few system calls, a lone message at
//     once. Messages (SEND and friends) wait while the queue holds more than
//     ProtoConfig.MaxQueueBytes; signals (links, monitors, exits) never wait.
//     While the reader runs callbacks, a sender that finds the queue empty
//     and the writer idle writes its frame itself, with one write that does
//     not wait (the rest, if any, is queued first): a reply leaves without
//     waking the writer. Replies to messages the reader has buffered wait
//     and leave in one write before it reads again (cork).
//
// Ticks follow OTP's net_ticktime: the writer sends an empty frame when it
// sent nothing for NetTickTime/4, and the reader gives up on a peer from
// which nothing arrived for NetTickTime.
//
// Frames: incoming, the pass-through format (112), the normal distribution
// header (131, 68) with atom cache references, and fragments (131, 69 and
// 131, 70) are accepted; a per-connection atom cache is kept. Outgoing,
// every message carries a normal header without atom cache references when
// the peer negotiated FRAGMENTS (OTP then refuses pass-through), and
// messages larger than FragmentSize (1 MiB by default) are sent as
// fragments. We never advertise DIST_HDR_ATOM_CACHE.
//
// Copies: the writer gathers queued frames into vectored writes, copying
// small frames together and writing large ones (and the data of fragments,
// framed by separate headers) from the buffer they were encoded into,
// pooled by size. The reader reads from the socket into 256 KiB slabs, as
// much as is ready per system call, and hands frames out as slices of the
// slab; the last fragment of a message (OTP sends a 64 KiB binary as a
// 64 KiB fragment and a short one) is moved next to the first, so a
// fragmented message is not copied either. A binary that makes up most of
// a message of 64 KiB or more keeps its bytes in the slab
// (term.WithSharedBinaries) instead of being copied out. Slabs nothing
// references any more (found by the garbage collector) are recycled, up to
// 32 MiB of them process-wide; past that budget a reader reads into new
// memory, which the collector frees, so a steady stream of large messages
// keeps the heap bounded. Free slabs go back after 30 s unused.
//
// The price, as with a sub-binary of a refc binary on the BEAM: such a
// binary keeps its whole slab alive, 256 KiB, for as long as it is
// referenced (at most 8 times its size). A process that keeps received
// binaries of 32 KiB or more for long (a cache) should keep copies
// (bytes.Clone).
//
// A frame that cannot be understood (a malformed term, a control message of
// the wrong shape, a fragment out of sequence) is dropped, counted and
// logged at most every 10 s; the connection goes on. An unknown control
// operation is logged once and dropped. A frame or fragmented message larger
// than MaxFrameSize closes the connection.
//
// # Memory per peer
//
// A message's size does not bound the memory its terms take in Go: a []
// takes one byte on the wire and a 16-byte slot in its list. So each
// message is decoded with a budget (term.WithDecodeBudget) of
// max(DecodeBudgetFloor, DecodeBudgetFactor × its size), 16 MiB or 4 times
// its size by default: every allocation of the decoder is charged before it
// is made, and a list, tuple or map whose slots alone exceed what is left is
// refused before anything is allocated for it. A message over its budget
// is dropped and counted like a frame that cannot be understood, and
// logged with its size and budget; the connection and every other peer go
// on. One connection holds at most MaxFrameSize bytes of frames and decodes
// one message at a time, so what one peer can make the node allocate is
// bounded by MaxFrameSize plus the budget of a message of MaxFrameSize
// bytes (1.25 GiB with the defaults), whatever the messages hold.
//
// Links use UNLINK_ID/UNLINK_ID_ACK when negotiated (the old UNLINK kills
// OTP 26+ connections). An unlink requested by the peer is acknowledged
// first, then removed through ergo's router from the local side, so that
// ergo forgets both of its link entries. Exit and monitor reasons travel as
// full terms: incoming ones reach ergo in Erlang syntax (term.Format), and
// ergo's string reasons go out as the term they spell (term.Parse), else as
// an atom.
//
// Alternative activation signals (ALTACT_SIG, OTP 28+, which deprecates
// ALIAS_SEND and schedules it for removal in OTP 30) are advertised. Such a
// peer sends every message to an alias, and every priority message or exit
// signal (to a pid, an alias or a name), as ALTACT_SIG_SEND; each is routed
// like the SEND_SENDER, ALIAS_SEND, REG_SEND or EXIT2 it stands for. ergo has
// no priority queue, so a priority signal is delivered as an ordinary one,
// which is what a BEAM does too unless the target is an active priority
// alias; trace tokens are ignored, as on every _TT operation, and so are
// Flags bits not yet defined, as OTP's receiver does. Outgoing, messages to
// an alias are sent as ALTACT_SIG_SEND to peers that advertise it, as
// ALIAS_SEND to the others.
//
// A monitor a local process sets on a process of the peer is kept by the
// connection until its MONITOR_P_EXIT, its demonitor or the end of the
// connection, and the connection delivers its DOWN itself (monitors.go):
// ergo records such a monitor only after sending MONITOR_P and drops an exit
// that comes first, as the peer's answer to the monitor of a missing name
// or of a pid that already exited may. When the connection ends, every
// monitor still open gets its noconnection DOWN before Serve returns.
//
// Counters (messages and bytes each way) are returned by the connection's
// Stats and reported to ProtoConfig.Observer.
//
// # Imports
//
// Package dist imports ergo and package term. Only package node (which
// wires it into ergo) imports it; metrics uses its Observer types through
// node.
package dist
