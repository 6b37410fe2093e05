package dist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"
)

// ProtoConfig configures the connection protocol. It is plain data; the
// zero value of a field means "use the default" only where stated.
type ProtoConfig struct {
	// NetTickTime is OTP's net_ticktime: a tick is sent when nothing was sent
	// for NetTickTime/4, and a peer from which nothing arrived for
	// NetTickTime is disconnected. Default 60s (OTP's default); must match
	// the peers' -kernel net_ticktime within a factor of about 1.25.
	NetTickTime time.Duration
	// MaxFrameSize bounds, in bytes, one frame and one message reassembled
	// from fragments (and everything held in reassembly at once). A larger
	// frame closes the connection. Default 256 MiB.
	//
	// With the decode budget below it bounds the memory one peer can make
	// the node allocate: a connection holds at most one message's frames
	// (MaxFrameSize) and decodes one message at a time, allocating at most
	// max(DecodeBudgetFloor, DecodeBudgetFactor × its size); 1.25 GiB with
	// the defaults, for a message of 256 MiB.
	MaxFrameSize int
	// DecodeBudgetFactor and DecodeBudgetFloor bound the Go memory that
	// decoding one incoming message may allocate, its decode budget:
	// max(DecodeBudgetFloor, DecodeBudgetFactor × the message's size in
	// bytes, control message and payload). A message over its budget is
	// dropped, counted and logged like a malformed frame (see
	// term.DecodeBudget for what is charged); the connection goes on.
	//
	// The Go form of a term is larger than its encoding: a []
	// (one byte) takes a 16-byte slot in its list, so without a budget a
	// 16 MiB message could take 256 MiB or more. Ordinary terms take 1 to
	// 9 times their size: binaries and strings about 1, floats and pids 2
	// to 3, Elixir structs and lists of integers or tuples 5 to 8, lists of
	// atoms from a set of more than 8 up to 9.
	//
	// DecodeBudgetFactor is a multiple of the message's size, at least 1.
	// Default 4: a message of 16 MiB or more allocates at most 4 times its
	// size while it is decoded, whatever it holds. Raise it (to 9, say) to
	// accept large messages of lists and maps, at that cost.
	DecodeBudgetFactor int
	// DecodeBudgetFloor is the budget, in bytes, of messages too small for
	// DecodeBudgetFactor to give them as much. Default 16 MiB: a message of
	// ordinary terms up to 1.75 MiB decodes, as does any message up to 256 KiB
	// (no term takes more than 64 times its size), and no small message
	// takes more than 16 MiB. Zero means the factor alone.
	DecodeBudgetFloor int
	// FragmentSize is the largest data part, in bytes, of an outgoing
	// fragment: messages larger than this are sent as fragments when the peer
	// negotiated FRAGMENTS. Default 1 MiB (see DefaultProtoConfig).
	FragmentSize int
	// MaxQueueBytes bounds the bytes of messages (Send, SendReg, SendAlias)
	// waiting for the writer; a sender blocks while the queue is above it, as
	// an Erlang process is suspended on a busy distribution port. Control
	// signals (links, monitors, exits) never block. Default 1 MiB, OTP's
	// default distribution buffer busy limit (erl +zdbbl 1024).
	MaxQueueBytes int
	// MaxOverflowBytes bounds the memory, in bytes (an estimate of the
	// decoded terms), of the peer's messages a connection holds for local
	// processes whose mailbox is full (see conn.deliver). At the bound the
	// connection stops reading from the peer until a receiver makes room,
	// as a BEAM process is suspended on a busy distribution port: no
	// message is dropped. Default 16 MiB: a burst of 16,000 1 KiB messages,
	// or 250 of 64 KiB, waits without holding the peer back, and a node
	// with N peers holds at most N times that. Zero means the default.
	MaxOverflowBytes int
	// Logger receives the connection's log lines. Nil means slog.Default().
	Logger *slog.Logger
	// Observer receives traffic counts and error events. Nil means none.
	Observer Observer
	// Spawner takes over the peers' spawn requests (erpc, rpc:call) before
	// ergo's router sees them. Nil means ergo's router handles them all.
	Spawner Spawner
}

// DefaultProtoConfig returns the defaults, each chosen for a reason:
// NetTickTime as OTP's default so ticks agree with an untuned BEAM;
// MaxFrameSize large enough for any message a BEAM application sends in
// practice while bounding memory per peer; FragmentSize 1 MiB: OTP
// fragments above 64 KiB so that its sender can interleave other processes'
// messages between the fragments of a large one, but this connection's
// writer sends a message's frames back to back anyway, so fragmenting only
// adds frames (a 64 KiB binary would be two) and OTP reassembles an
// unfragmented frame of any size just the same (docs/performance-notes.md,
// "Fragment size: 1 MiB"); MaxQueueBytes as OTP's busy limit: it absorbs a burst
// while the writer drains it, and a larger queue costs the sender: its
// frame buffers then cycle through as much memory as the queue may hold,
// which is cold in the cache and partly new (with 64 MiB a sender of 64 KiB
// messages spent twice the CPU per message; docs/performance-notes.md,
// "The send queue bound: 1 MiB");
// DecodeBudgetFactor 4 so that a large message, whatever it holds, costs at
// most four times its size to decode (a 16 MiB list of [] would otherwise
// take 256 MiB); DecodeBudgetFloor 16 MiB so that the budget refuses no
// message of ordinary terms (at most 9 times their size) up to 1.75 MiB,
// while one small message still cannot take more than 16 MiB.
func DefaultProtoConfig() ProtoConfig {
	return ProtoConfig{
		NetTickTime:        60 * time.Second,
		MaxFrameSize:       256 << 20,
		FragmentSize:       1 << 20,
		MaxQueueBytes:      1 << 20,
		DecodeBudgetFactor: 4,
		DecodeBudgetFloor:  16 << 20,
		MaxOverflowBytes:   DefaultMaxOverflowBytes,
	}
}

// DefaultMaxOverflowBytes is ProtoConfig.MaxOverflowBytes's default.
const DefaultMaxOverflowBytes = 16 << 20

// maxOverflowBytes is MaxOverflowBytes, the default for zero.
func (c ProtoConfig) maxOverflowBytes() int {
	if c.MaxOverflowBytes <= 0 {
		return DefaultMaxOverflowBytes
	}
	return c.MaxOverflowBytes
}

// maxDecodeBudgetFactor is the largest DecodeBudgetFactor. No term takes
// more than 64 times its size in Go (maps of one small integer key, nested
// or in a list, take 57 to 63), so a factor of 64 already means no budget.
const maxDecodeBudgetFactor = 1024

// decodeBudget returns the decode budget, in bytes, of a message of size
// bytes.
func (c ProtoConfig) decodeBudget(size int) int64 {
	return max(int64(c.DecodeBudgetFloor), int64(c.DecodeBudgetFactor)*int64(size))
}

// Validate reports every invalid field; it changes nothing.
func (c ProtoConfig) Validate() error {
	var errs []error
	if c.NetTickTime < 40*time.Millisecond {
		errs = append(errs, fmt.Errorf("NetTickTime %s: must be at least 40ms", c.NetTickTime))
	}
	if c.MaxFrameSize < 1024 || int64(c.MaxFrameSize) > 1<<32-1 {
		errs = append(errs, fmt.Errorf("MaxFrameSize %d: must be between 1024 and 4294967295", c.MaxFrameSize))
	}
	if c.FragmentSize < 256 {
		errs = append(errs, fmt.Errorf("FragmentSize %d: must be at least 256", c.FragmentSize))
	} else if c.FragmentSize > c.MaxFrameSize-32 && c.MaxFrameSize >= 1024 {
		errs = append(errs, fmt.Errorf("FragmentSize %d: must be below MaxFrameSize %d", c.FragmentSize, c.MaxFrameSize))
	}
	if c.MaxQueueBytes < 1 {
		errs = append(errs, fmt.Errorf("MaxQueueBytes %d: must be positive", c.MaxQueueBytes))
	}
	if c.DecodeBudgetFactor < 1 || c.DecodeBudgetFactor > maxDecodeBudgetFactor {
		errs = append(errs, fmt.Errorf("DecodeBudgetFactor %d: must be between 1 and %d", c.DecodeBudgetFactor, maxDecodeBudgetFactor))
	}
	if c.MaxOverflowBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxOverflowBytes %d: must not be negative", c.MaxOverflowBytes))
	}
	if c.DecodeBudgetFloor < 0 {
		errs = append(errs, fmt.Errorf("DecodeBudgetFloor %d: must not be negative", c.DecodeBudgetFloor))
	}
	return errors.Join(errs...)
}

// ErrClosed is returned by a connection's methods once it has
// been closed. It wraps ergo's lib.ErrNoRoute, which ergo returns when the
// node is not connected at all: either way the peer is out of reach and a
// monitor of its processes ends with noconnection.
var ErrClosed = fmt.Errorf("dist: connection closed: %w", lib.ErrNoRoute)

// Proto is gonode's implementation of ergo's node.ProtoInterface: the
// distribution protocol spoken on a connection after the handshake.
type Proto struct {
	cfg   ProtoConfig
	log   *slog.Logger
	watch watchdog // of the readers that run callbacks (inline.go)
}

var _ node.ProtoInterface = (*Proto)(nil)

// NewProto checks cfg and returns a Proto to put in ergo's
// node.Options.Proto.
func NewProto(cfg ProtoConfig) (*Proto, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dist: invalid proto config: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Proto{cfg: cfg, log: log.With("component", "dist")}, nil
}

// Init prepares the connection whose handshake produced details. It starts
// no goroutine: ergo may drop the connection (a simultaneous connect) without
// ever calling Serve. details.Custom must hold the Peer the handshake made.
func (p *Proto) Init(ctx context.Context, nc lib.NetReadWriter, nodename string, details node.HandshakeDetails) (node.ConnectionInterface, error) {
	var peer Peer
	switch v := details.Custom.(type) {
	case accepted:
		// Handed off by Serve, nc being ergo's loopback connection standing
		// for v.conn, the peer's (see acceptor.go), or over TLS, v.conn
		// being the TLS connection on nc.
		peer, nc = v.Peer, v.conn
	case Peer:
		peer = v
	case *Peer:
		if v == nil {
			return nil, errors.New("dist: handshake details carry a nil Peer")
		}
		peer = *v
	default:
		return nil, fmt.Errorf("dist: handshake details carry %T, not a dist.Peer: use dist.NewHandshake", details.Custom)
	}
	if peer.Name == "" {
		peer.Name = details.Name
	}
	var src io.Reader = &deadlineReader{nc: nc, d: p.cfg.NetTickTime}
	if details.Buffer != nil && len(details.Buffer.B) > 0 {
		// Bytes the handshake read past its last message belong to the
		// first frames.
		early := bytes.Clone(details.Buffer.B)
		src = io.MultiReader(bytes.NewReader(early), src)
	}
	return newConn(ctx, p, nc, src, nodename, peer), nil
}

// Serve runs the connection until it fails, the peer goes silent for
// NetTickTime, or the node stops. It reads and routes incoming frames in
// arrival order in the calling goroutine and writes outgoing frames from
// one writer goroutine. When Serve returns the connection is closed and ergo
// routes the node-down.
func (p *Proto) Serve(ci node.ConnectionInterface, router node.CoreRouter) {
	c, ok := ci.(*conn)
	if !ok {
		p.log.Error("Serve called with a connection this proto did not make", "type", fmt.Sprintf("%T", ci))
		return
	}
	c.serve(router)
}

// Terminate releases what the connection still holds. Ergo calls it after
// Serve returned.
func (p *Proto) Terminate(ci node.ConnectionInterface) {
	if c, ok := ci.(*conn); ok {
		c.shutdown(nil)
	}
}

// deadlineReader arms the read deadline before every read of the network
// connection, so that a peer silent for d is noticed (OTP's tick timeout).
// It runs once per read system call, not per frame.
type deadlineReader struct {
	nc lib.NetReadWriter
	d  time.Duration
}

func (r *deadlineReader) Read(b []byte) (int, error) {
	if err := r.nc.SetReadDeadline(time.Now().Add(r.d)); err != nil {
		return 0, err
	}
	return r.nc.Read(b)
}
