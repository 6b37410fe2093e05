package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/lib"
	ergonode "github.com/ergo-services/ergo/node"

	"github.com/gonode/gonode/epmd"
	"github.com/gonode/gonode/node/dist"
)

// wire is the one place where the node's distribution layer is chosen: the
// handshake, the connection protocol and the registrar (EPMD) that ergo is
// given through node.Options. gonode's own handshake and protocol (package
// dist, with the term codec of package term) replace ergo's, which cannot
// talk to OTP 26+ and loses data even with OTP 25 (see
// docs/interop-notes.md); the registrar is built on package epmd.
type wire struct {
	handshake *dist.Handshake
	proto     *dist.Proto
	registrar *registrar
	created   uint32
	stats     *wireStats
	events    peerEvents

	ln      net.Listener // the distribution listener, in front of ergo's
	out     *outgoing    // makes the outgoing connections (outgoing.go)
	serving sync.WaitGroup
}

// connectedPeers is the node as the handshake asks it about established
// connections (the simultaneous-connect and `alive` rules), through
// handshakeConns.
type connectedPeers interface {
	IsConnected(peer string) bool
	Disconnect(peer string) error
}

// peerEvents is told, by eventProto, when a connection came up and when it
// is gone.
type peerEvents interface {
	// peerUp: conn to peer is registered and starts serving.
	peerUp(peer string, conn any)
	// peerDown: conn to peer has been unregistered and closed.
	peerDown(peer string, conn any)
}

// eventProto is the dist protocol as ergo is given it: it tells the node
// when each connection comes up and goes down. ergo's own EventNetwork
// cannot be used for this: ergo sends it from a package-level pid that
// every node started in the process overwrites, so with two nodes in one
// process the earlier one never hears of its peers (ErrEventOwner).
type eventProto struct {
	*dist.Proto
	events peerEvents
}

// peerConn is a connection made by Init, carrying its peer's name for
// Serve and Terminate.
type peerConn struct {
	ergonode.ConnectionInterface
	peer string
}

func (p eventProto) Init(ctx context.Context, nc lib.NetReadWriter, nodename string, details ergonode.HandshakeDetails) (ergonode.ConnectionInterface, error) {
	c, err := p.Proto.Init(ctx, nc, nodename, details)
	if err != nil {
		return nil, err
	}
	return &peerConn{ConnectionInterface: c, peer: details.Name}, nil
}

// Serve runs after ergo registered the connection.
func (p eventProto) Serve(ci ergonode.ConnectionInterface, router ergonode.CoreRouter) {
	pc, ok := ci.(*peerConn)
	if !ok {
		p.Proto.Serve(ci, router)
		return
	}
	p.events.peerUp(pc.peer, pc)
	p.Proto.Serve(pc.ConnectionInterface, router)
}

// Terminate runs after ergo unregistered the connection.
func (p eventProto) Terminate(ci ergonode.ConnectionInterface) {
	pc, ok := ci.(*peerConn)
	if !ok {
		p.Proto.Terminate(ci)
		return
	}
	p.Proto.Terminate(pc.ConnectionInterface)
	p.events.peerDown(pc.peer, pc)
}

// handshakeConns adapts the node to dist.Connections.
type handshakeConns struct{ n connectedPeers }

func (c handshakeConns) Connected(peer string) bool { return c.n.IsConnected(peer) }

func (c handshakeConns) Disconnect(ctx context.Context, peer string) error {
	if err := c.n.Disconnect(peer); err != nil && c.n.IsConnected(peer) {
		return err
	}
	for c.n.IsConnected(peer) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// newWire builds the wire layer, over TLS when tls is set. obs receives the node's events; the
// handshake asks peers about established connections; events is told when a
// connection comes up and goes down; spawner takes the peers' spawn requests
// (erpc and rpc:call, rpc.go; nil leaves them all to ergo's router);
// causes records the cause of failed outgoing attempts.
func newWire(cfg Config, tls *certSource, log *slog.Logger, obs Observer, epmdObs epmd.Observer, peers connectedPeers, events peerEvents, spawner dist.Spawner, causes *peerCauses) (*wire, error) {
	stats := &wireStats{obs: obs, ends: map[string]DisconnectReason{}}
	hcfg := dist.DefaultHandshakeConfig()
	hcfg.Hidden = cfg.Hidden
	hcfg.HandshakeTimeout = cfg.HandshakeTimeout
	hcfg.Fronted = true // wire.serve runs dist's listener in front of ergo's
	hcfg.Connections = handshakeConns{peers}
	hcfg.Logger = log
	hcfg.Observer = stats
	if tls != nil {
		hcfg.TLS = tls.configs()
	}
	hs, err := dist.NewHandshake(hcfg)
	if err != nil {
		return nil, err
	}
	pcfg := dist.DefaultProtoConfig()
	pcfg.NetTickTime = cfg.NetTickTime
	pcfg.Logger = log
	pcfg.Observer = stats
	pcfg.Spawner = spawner
	pcfg.MaxOverflowBytes = cfg.MaxOverflowBytes
	proto, err := dist.NewProto(pcfg)
	if err != nil {
		return nil, err
	}
	reg := newRegistrar(cfg, log, epmdObs)
	reg.causes = causes
	return &wire{
		handshake: hs,
		proto:     proto,
		registrar: reg,
		created:   uint32(time.Now().Unix()),
		stats:     stats,
		events:    events,
	}, nil
}

// creation is the creation number the node starts with: the start time in
// seconds, so a restarted node's pids never match the old incarnation's.
func (w *wire) creation() uint32 { return w.created }

// listen binds the distribution listener: Config.ListenAddr (or every
// interface) on Config.DistPort (or a free port), the port that EPMD
// advertises and peers dial.
func (w *wire) listen(ctx context.Context, cfg Config) error {
	lc := net.ListenConfig{KeepAlive: 15 * time.Second}
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(listenHost(cfg), strconv.Itoa(cfg.DistPort)))
	if err != nil {
		return fmt.Errorf("distribution listener: %w", err)
	}
	out, err := newOutgoing(w.handshake, cfg.Cookie.Reveal(), w.registrar.causes)
	if err != nil {
		_ = ln.Close()
		return err
	}
	w.ln, w.out = ln, out
	w.registrar.out = out
	w.registrar.setPort(uint16(ln.Addr().(*net.TCPAddr).Port))
	return nil
}

// serve runs the handshakes of incoming connections concurrently and hands
// the completed ones to ergo's listener (dist.Handshake.Serve), once ergo
// runs.
func (w *wire) serve(cookie string) {
	forward := net.JoinHostPort("127.0.0.1", strconv.Itoa(w.registrar.ergoListenPort()))
	w.serving.Add(1)
	go func() {
		defer w.serving.Done()
		_ = w.handshake.Serve(w.ln, cookie, forward)
	}()
	w.out.serve()
}

// stopListening closes the distribution listener and the connections
// whose handshake is under way, and waits until none is left.
func (w *wire) stopListening() {
	if w.ln != nil {
		_ = w.ln.Close()
	}
	w.serving.Wait()
}

func (w *wire) close() {
	w.stopListening()
	if w.out != nil {
		w.out.close()
	}
	_ = w.registrar.Close()
}

// options fills ergo's wire-layer options.
func (w *wire) options(o *ergonode.Options) {
	o.Handshake = w.handshake
	o.Proto = eventProto{Proto: w.proto, events: w.events}
	o.Registrar = w.registrar
}

// Traffic is the cumulative distribution traffic of a node, over all
// connections it ever had.
type Traffic struct {
	MessagesIn, MessagesOut uint64
	BytesIn, BytesOut       uint64
}

// wireStats turns the dist layer's observations into Observer calls and
// cumulative traffic counters.
type wireStats struct {
	obs                                Observer
	msgsIn, msgsOut, bytesIn, bytesOut atomic.Uint64
	// outHandshakes counts finished outgoing handshakes, so that Connect can
	// tell a failure before any handshake (unreachable) from one the
	// handshake already reported.
	outHandshakes atomic.Uint64

	mu   sync.Mutex
	ends map[string]DisconnectReason // by peer, until the node takes it
}

// ObserveHandshake implements dist.HandshakeObserver.
func (s *wireStats) ObserveHandshake(e dist.HandshakeEvent) {
	if e.Direction == Outgoing {
		s.outHandshakes.Add(1)
	}
	if e.Result == ConnectOK {
		s.obs.Connected(e.Peer, e.Direction)
		return
	}
	s.obs.ConnectFailed(e.Peer, e.Direction, e.Result)
}

// Traffic implements dist.Observer.
func (s *wireStats) Traffic(_ string, dir Direction, messages, bytes int) {
	if dir == Incoming {
		s.msgsIn.Add(uint64(messages))
		s.bytesIn.Add(uint64(bytes))
		return
	}
	s.msgsOut.Add(uint64(messages))
	s.bytesOut.Add(uint64(bytes))
}

// FrameDropped implements dist.Observer.
func (s *wireStats) FrameDropped(peer string, _ error) { s.obs.MalformedFrame(peer) }

// MessageDropped implements dist.Observer: a message from a peer was dropped
// at a mailbox that stayed full (the dist layer retries for a while first).
func (s *wireStats) MessageDropped(peer string) { s.obs.MessageDropped(peer) }

// Disconnected implements dist.Observer: the connection says why it ended;
// the node adds what only it knows (takeEnd) and reports the disconnect
// when ergo has unregistered the connection.
func (s *wireStats) Disconnected(peer string, reason DisconnectReason) {
	s.mu.Lock()
	s.ends[peer] = reason
	s.mu.Unlock()
}

// takeEnd returns (once) the reason peer's last connection gave for its
// end, DisconnectPeerClosed when it gave none.
func (s *wireStats) takeEnd(peer string) DisconnectReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.ends[peer]
	if !ok {
		return DisconnectPeerClosed
	}
	delete(s.ends, peer)
	return r
}

func (s *wireStats) traffic() Traffic {
	return Traffic{
		MessagesIn: s.msgsIn.Load(), MessagesOut: s.msgsOut.Load(),
		BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load(),
	}
}
