package pubsub

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/ratelog"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
	"github.com/gonode/gonode/node/pg"
	"github.com/gonode/gonode/node/term"
)

// Scope is the pg scope the PG2 adapter's workers join: every PubSub
// server of a node shares it. Start it with pg.Start(n, pubsub.Scope, ...).
const Scope = "Elixir.Phoenix.PubSub"

// Dispatcher is the dispatcher module Go broadcasts name: Phoenix.PubSub
// itself, whose dispatch/3 sends the message to each subscriber.
const Dispatcher = etf.Atom("Elixir.Phoenix.PubSub")

var atomForward = etf.Atom("forward_to_local")

// Errors.
var (
	// ErrWrongScope: Start was given a scope other than Scope.
	ErrWrongScope = errors.New("pubsub: the scope must be " + Scope)
	// ErrBadOptions: a pool size out of range.
	ErrBadOptions = errors.New("pubsub: invalid options")
	// ErrStopped: the PubSub server was stopped.
	ErrStopped = errors.New("pubsub: stopped")
)

// Observer hears the broadcasts a PubSub server handles, for metrics. Its
// methods must be quick and safe for concurrent use.
type Observer interface {
	// BroadcastIn: a broadcast arrived from another node.
	BroadcastIn(pubsub string)
	// BroadcastOut: a broadcast of this node was sent to peers nodes.
	BroadcastOut(pubsub string, peers int)
	// Dropped: a message was not delivered: "malformed" (not a
	// forward_to_local with a binary topic) or "queue_full" (a
	// subscription held Options.MaxQueued undelivered messages).
	Dropped(pubsub string, reason string)
}

// NopObserver ignores every event.
type NopObserver struct{}

func (NopObserver) BroadcastIn(string)       {}
func (NopObserver) BroadcastOut(string, int) {}
func (NopObserver) Dropped(string, string)   {}

// Options configure a PubSub server. Pool sizes must match the Elixir
// side's: the adapter's workers are named after them.
type Options struct {
	// PoolSize is the adapter's pool_size: how many workers (and groups)
	// this node runs. Default 1.
	PoolSize int
	// BroadcastPoolSize is the adapter's broadcast_pool_size: how many of
	// those groups senders choose from. Default PoolSize; at most PoolSize.
	BroadcastPoolSize int
	// MaxQueued bounds the messages one subscription holds that its reader
	// has not taken; beyond it messages are dropped and counted. Default
	// 65,536.
	MaxQueued int
	// Observer hears broadcasts in and out and drops; nil means none.
	Observer Observer
	// Logger receives rate-limited log lines; nil discards them.
	Logger *slog.Logger
}

// Message is a broadcast as a Go subscriber receives it.
type Message struct {
	Topic   string
	Payload etf.Term
}

// Unmarshal stores the payload (an Elixir struct or map) into the struct v
// points to, as term.Unmarshal does.
func (m Message) Unmarshal(v any, opts ...term.StructOption) error {
	return term.Unmarshal(m.Payload, v, opts...)
}

// PubSub is a Phoenix.PubSub server on a gonode node: its workers are
// members of the PG2 adapter's groups, so Elixir broadcasts reach Go
// subscribers, and Go broadcasts reach Elixir subscribers.
type PubSub struct {
	name      string // the Elixir module name, with "Elixir."
	n         *node.Node
	scope     *pg.Scope
	groups    []etf.Atom // listener groups: the adapter name, then _2.._N
	broadcast int
	maxQueued int
	obs       Observer
	log       *ratelog.Limiter

	mu      sync.Mutex
	topics  map[string]map[*Subscription]struct{}
	workers []gen.Process
	stopped bool
}

// Start starts the PubSub server name (as in Elixir: "MyApp.PubSub") on n:
// one worker per pool group, registered under the group's name and joined
// to it in scope, which must be the running Scope.
func Start(n *node.Node, scope *pg.Scope, name string, opts Options) (*PubSub, error) {
	if scope == nil || scope.Name() != Scope {
		return nil, ErrWrongScope
	}
	if opts.PoolSize == 0 {
		opts.PoolSize = 1
	}
	if opts.BroadcastPoolSize == 0 {
		opts.BroadcastPoolSize = opts.PoolSize
	}
	if opts.MaxQueued <= 0 {
		opts.MaxQueued = 1 << 16
	}
	if opts.PoolSize < 1 || opts.PoolSize > 1024 || opts.BroadcastPoolSize < 1 || opts.BroadcastPoolSize > opts.PoolSize {
		return nil, fmt.Errorf("%w: pool_size %d, broadcast_pool_size %d", ErrBadOptions, opts.PoolSize, opts.BroadcastPoolSize)
	}
	if !strings.HasPrefix(name, "Elixir.") {
		name = "Elixir." + name
	}
	ps := &PubSub{
		name: name, n: n, scope: scope, groups: Groups(name, opts.PoolSize),
		broadcast: opts.BroadcastPoolSize, maxQueued: opts.MaxQueued, obs: opts.Observer,
		topics: map[string]map[*Subscription]struct{}{},
	}
	if ps.obs == nil {
		ps.obs = NopObserver{}
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ps.log = ratelog.New(lg.With("component", "pubsub", "pubsub", name), ratelog.Config{})
	for _, g := range ps.groups {
		p, err := n.RegisterServerWith(string(g), node.ServerOptions{MailboxSize: 4096, Restart: node.Temporary}, &worker{ps: ps})
		if err != nil {
			ps.Stop()
			return nil, fmt.Errorf("pubsub: start worker %s: %w", g, err)
		}
		ps.workers = append(ps.workers, p)
		if err := scope.Join(g, p.Self()); err != nil {
			ps.Stop()
			return nil, fmt.Errorf("pubsub: join %s: %w", g, err)
		}
	}
	return ps, nil
}

// Groups returns the PG2 adapter's group names for a PubSub server (with
// its "Elixir." prefix) and a pool size: the adapter name
// ("Elixir.MyApp.PubSub.Adapter"), then "<adapter>_2" to "<adapter>_N".
func Groups(name string, poolSize int) []etf.Atom {
	adapter := name + ".Adapter"
	out := []etf.Atom{etf.Atom(adapter)}
	for i := 2; i <= poolSize; i++ {
		out = append(out, etf.Atom(fmt.Sprintf("%s_%d", adapter, i)))
	}
	return out
}

// Stop ends the workers (the other nodes drop them from the groups) and
// closes every subscription.
func (ps *PubSub) Stop() {
	ps.mu.Lock()
	if ps.stopped {
		ps.mu.Unlock()
		return
	}
	ps.stopped = true
	workers := ps.workers
	var subs []*Subscription
	for _, set := range ps.topics {
		for s := range set {
			subs = append(subs, s)
		}
	}
	ps.topics = map[string]map[*Subscription]struct{}{}
	ps.mu.Unlock()
	for _, w := range workers {
		w.Kill()
	}
	for _, s := range subs {
		s.close()
	}
}

// Subscribe subscribes to topic: every broadcast on it, from any node,
// arrives on the subscription's channel in the order each sender made
// them.
func (ps *PubSub) Subscribe(topic string) (*Subscription, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.stopped {
		return nil, ErrStopped
	}
	s := newSubscription(ps, topic)
	set := ps.topics[topic]
	if set == nil {
		set = map[*Subscription]struct{}{}
		ps.topics[topic] = set
	}
	set[s] = struct{}{}
	return s, nil
}

func (ps *PubSub) unsubscribe(s *Subscription) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if set := ps.topics[s.topic]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(ps.topics, s.topic)
		}
	}
}

// Broadcast sends message (a term, or a Go value term.Marshal converts) to
// every subscriber of topic on every node, this one included, as
// Phoenix.PubSub.broadcast/3 does.
func (ps *PubSub) Broadcast(topic string, message any) error {
	if ps.isStopped() {
		return ErrStopped
	}
	msg, err := term.Marshal(message)
	if err != nil {
		return err
	}
	self := etf.Atom(ps.n.Name())
	fwd := etf.Tuple{atomForward, []byte(topic), msg, Dispatcher}
	// A Go broadcaster always uses the first group: every node runs it,
	// and one group keeps the order of this node's broadcasts.
	peers := 0
	for _, pid := range ps.scope.Members(ps.groups[0]) {
		if pid.Node == self {
			continue
		}
		if err := ps.workers[0].Send(pid, fwd); err == nil {
			peers++
		}
	}
	ps.obs.BroadcastOut(ps.name, peers)
	ps.dispatch(topic, msg)
	return nil
}

// DirectBroadcast sends message to the subscribers of topic on one node,
// as Phoenix.PubSub.direct_broadcast/4 does.
func (ps *PubSub) DirectBroadcast(nodeName, topic string, message any) error {
	if ps.isStopped() {
		return ErrStopped
	}
	msg, err := term.Marshal(message)
	if err != nil {
		return err
	}
	if nodeName == ps.n.Name() {
		ps.dispatch(topic, msg)
		return nil
	}
	ps.obs.BroadcastOut(ps.name, 1)
	return ps.workers[0].Send(gen.ProcessID{Name: string(ps.groups[0]), Node: nodeName},
		etf.Tuple{atomForward, []byte(topic), msg, Dispatcher})
}

func (ps *PubSub) isStopped() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.stopped
}

// LocalBroadcast sends message to the subscribers of topic on this node.
func (ps *PubSub) LocalBroadcast(topic string, message any) error {
	msg, err := term.Marshal(message)
	if err != nil {
		return err
	}
	ps.dispatch(topic, msg)
	return nil
}

func (ps *PubSub) dispatch(topic string, msg etf.Term) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for s := range ps.topics[topic] {
		if !s.push(Message{Topic: topic, Payload: msg}) {
			ps.obs.Dropped(ps.name, "queue_full")
			ps.log.Warn("queue_full", "pubsub subscription is full: a message was dropped", "topic", ratelog.Truncate(topic, 64))
		}
	}
}

// worker is one of the adapter's workers: it hands each forwarded
// broadcast to this node's subscribers.
type worker struct {
	genserver.Server
	ps *PubSub
}

func (w *worker) HandleInfo(_ *genserver.Process, msg etf.Term) gen.ServerStatus {
	t, ok := msg.(etf.Tuple)
	if !ok || len(t) != 4 || t[0] != atomForward {
		// The adapter's workers ignore anything else too.
		w.ps.obs.Dropped(w.ps.name, "malformed")
		return gen.ServerStatusOK
	}
	topic, ok := t[1].([]byte)
	if !ok {
		w.ps.obs.Dropped(w.ps.name, "malformed")
		w.ps.log.Warn("malformed", "pubsub worker got a forward_to_local whose topic is not a binary")
		return gen.ServerStatusOK
	}
	w.ps.obs.BroadcastIn(w.ps.name)
	w.ps.dispatch(string(topic), t[2])
	return gen.ServerStatusOK
}

// Subscription is one subscriber's queue of messages.
type Subscription struct {
	ps    *PubSub
	topic string
	out   chan Message

	mu     sync.Mutex
	queue  []Message
	wake   chan struct{}
	done   chan struct{}
	closed bool
}

func newSubscription(ps *PubSub, topic string) *Subscription {
	s := &Subscription{ps: ps, topic: topic, out: make(chan Message), wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.pump()
	return s
}

// C returns the channel the subscription's messages arrive on; it is
// closed by Cancel and by the server's Stop.
func (s *Subscription) C() <-chan Message { return s.out }

// Topic returns the subscribed topic.
func (s *Subscription) Topic() string { return s.topic }

// Cancel ends the subscription.
func (s *Subscription) Cancel() {
	s.ps.unsubscribe(s)
	s.close()
}

func (s *Subscription) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
}

func (s *Subscription) push(m Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true
	}
	if len(s.queue) >= s.ps.maxQueued {
		return false
	}
	s.queue = append(s.queue, m)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// pump moves queued messages to the channel in order.
func (s *Subscription) pump() {
	defer close(s.out)
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, m := range batch {
			select {
			case s.out <- m:
			case <-s.done:
				return
			}
		}
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
	}
}
