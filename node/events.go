package node

import (
	"log/slog"
	"sync"
	"time"
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
	// live holds, per peer, the connection whose up event was published
	// last. The down event of an older connection that ends after a newer one
	// came up is not published: subscribers never see a peer down while it
	// is connected.
	live map[string]any
}

func newEventHub(log *slog.Logger) *eventHub {
	return &eventHub{log: log, subs: map[int]chan Event{}, live: map[string]any{}}
}

// up publishes that conn to e.Peer came up.
func (h *eventHub) up(conn any, e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live[e.Peer] = conn
	h.publishLocked(e)
}

// down publishes that conn to e.Peer went down, unless a newer connection
// to the peer is up.
func (h *eventHub) down(conn any, e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.live[e.Peer] != conn {
		return
	}
	delete(h.live, e.Peer)
	h.publishLocked(e)
}

func (h *eventHub) publishLocked(e Event) {
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

// peerUp implements peerEvents: the wire layer registered conn to peer.
func (n *Node) peerUp(peer string, conn any) {
	n.log.Info("peer connected", "peer", peer)
	n.causes.succeeded(peer)
	n.events.up(conn, Event{Peer: peer, Up: true, At: time.Now()})
}

// peerDown implements peerEvents: conn to peer was unregistered and closed.
func (n *Node) peerDown(peer string, conn any) {
	reason := n.disconnectReason(peer)
	n.log.Info("peer disconnected", "peer", peer, "reason", string(reason))
	n.obs.Disconnected(peer, reason)
	n.events.down(conn, Event{Peer: peer, Up: false, At: time.Now()})
}
