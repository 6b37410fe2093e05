package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

// goEcho is the Go server of the call cells: a genserver.Server answering a
// call with the request, as GonodeBench.Echo does.
type goEcho struct{ genserver.Server }

func (goEcho) HandleCall(p *genserver.Process, from gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	return m, gen.ServerStatusOK
}

// goCounter is the Go receiver of the one-way cells, GonodeBench.Counter's
// counterpart; it also passes a :bench_done it receives (from a BEAM
// counter that goSender armed with its pid) to done.
type goCounter struct {
	genserver.Server
	n, max int
	notify etf.Pid
	done   chan struct{}
}

func (s *goCounter) HandleInfo(p *genserver.Process, m etf.Term) gen.ServerStatus {
	if t, ok := m.(etf.Tuple); ok && len(t) == 3 && t[0] == etf.Atom("bench_arm") {
		if max, ok := t[1].(int64); ok {
			if pid, ok := t[2].(etf.Pid); ok {
				s.n, s.max, s.notify = 0, int(max), pid
				return gen.ServerStatusOK
			}
		}
	}
	if m == etf.Atom("bench_done") {
		s.done <- struct{}{}
		return gen.ServerStatusOK
	}
	s.n++
	if s.n == s.max {
		_ = p.Send(s.notify, etf.Atom("bench_done"))
	}
	return gen.ServerStatusOK
}

// goCaller is a long-lived Go caller: asked through Direct, it calls a
// server with genserver's Process.Call until a deadline, timing each call.
type goCaller struct{ genserver.Server }

type callLoop struct {
	to    any
	msg   etf.Term
	until time.Time
}

func (goCaller) HandleDirect(p *genserver.Process, _ etf.Ref, m any) (any, gen.DirectStatus) {
	r, ok := m.(callLoop)
	if !ok {
		return nil, fmt.Errorf("goCaller: unexpected %T", m)
	}
	lat := make([]time.Duration, 0, 1024)
	for {
		t0 := time.Now()
		if !t0.Before(r.until) {
			return lat, nil
		}
		if _, err := p.CallWithTimeout(r.to, r.msg, time.Minute); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
}

// goSender sends one-way messages: asked through Direct, it arms a counter
// to notify `notify` and sends it n copies of msg.
type goSender struct{ genserver.Server }

type sendRun struct {
	to     any
	msg    etf.Term
	n      int
	notify etf.Pid
}

func (goSender) HandleDirect(p *genserver.Process, _ etf.Ref, m any) (any, gen.DirectStatus) {
	r, ok := m.(sendRun)
	if !ok {
		return nil, fmt.Errorf("goSender: unexpected %T", m)
	}
	if err := p.Send(r.to, etf.Tuple{etf.Atom("bench_arm"), int64(r.n), r.notify}); err != nil {
		return nil, err
	}
	for range r.n {
		if err := p.Send(r.to, r.msg); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// goMsg is the Go term of a size, the same as exMsg's.
func goMsg(size string) etf.Term {
	switch size {
	case "small":
		return etf.Tuple{etf.Atom("seq"), int64(12345), etf.Atom("ok")}
	case "1KiB":
		return []byte(repeat('x', 1024))
	case "64KiB":
		return []byte(repeat('x', 65536))
	}
	panic("unknown size " + size)
}

func repeat(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

// startGoNode starts a gonode node with the defaults (a user's node as
// `node.DefaultConfig` makes it), quiet.
func startGoNode(name, cookie string, mailbox int) (*node.Node, error) {
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = name, node.Cookie(cookie)
	if mailbox > 0 {
		cfg.MailboxSize = mailbox
	}
	n, err := node.New(cfg, node.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return n, nil
}

func stopGoNode(n *node.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = n.Stop(ctx)
}
