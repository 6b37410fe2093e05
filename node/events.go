package node

import (
	"log/slog"
	"sync"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	ergonode "github.com/ergo-services/ergo/node"
)

// Event is a change of a peer connection.
type Event struct {
	// Peer is the peer's full node name.
	Peer string
	// Up is true when the connection came up, false when it went down.
	Up bool
	// At is when the node saw the change.
	At time.Time
}

// eventHub fans node up/down events out to subscribers. A subscriber whose
// buffer is full loses the event, which is logged and counted in Dropped.
type eventHub struct {
	log     *slog.Logger
	mu      sync.Mutex
	next    int
	subs    map[int]chan Event
	closed  bool
	dropped uint64
}

func newEventHub(log *slog.Logger) *eventHub {
	return &eventHub{log: log, subs: map[int]chan Event{}}
}

func (h *eventHub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ch := range h.subs {
		select {
		case ch <- e:
		default:
			h.dropped++
			h.log.Warn("node event subscriber is not keeping up; event dropped", "peer", e.Peer, "up", e.Up)
		}
	}
}

func (h *eventHub) subscribe(buffer int) (<-chan Event, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan Event, buffer)
	if h.closed {
		close(ch)
		return ch, func() {}
	}
	id := h.next
	h.next++
	h.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if c, ok := h.subs[id]; ok {
				delete(h.subs, id)
				close(c)
			}
		})
	}
}

func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for id, ch := range h.subs {
		delete(h.subs, id)
		close(ch)
	}
}

// Subscribe returns a channel of peer up/down events with the given buffer
// (at least 1) and a function that ends the subscription and closes the
// channel. The channel is also closed when the node stops. Events that do not
// fit in a full buffer are dropped with a warning: size the buffer for bursts.
func (n *Node) Subscribe(buffer int) (<-chan Event, func()) {
	if buffer < 1 {
		buffer = 1
	}
	return n.events.subscribe(buffer)
}

// eventsServer turns ergo's network events into Events.
type eventsServer struct {
	gen.Server
	n *Node
}

func (s *eventsServer) Init(p *gen.ServerProcess, args ...etf.Term) error {
	return p.MonitorEvent(ergonode.EventNetwork)
}

func (s *eventsServer) HandleInfo(p *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	ev, ok := message.(ergonode.MessageEventNetwork)
	if !ok || ev.Proxy {
		return gen.ServerStatusOK
	}
	if ev.Online {
		s.n.log.Info("peer connected", "peer", ev.PeerName)
	} else {
		reason := s.n.disconnectReason(ev.PeerName)
		s.n.log.Info("peer disconnected", "peer", ev.PeerName, "reason", string(reason))
		s.n.obs.Disconnected(ev.PeerName, reason)
	}
	s.n.events.publish(Event{Peer: ev.PeerName, Up: ev.Online, At: time.Now()})
	return gen.ServerStatusOK
}
