package epmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// DefaultClientTimeout bounds one Client request (dial and exchange) when the
// context has no earlier deadline: long enough for a loaded host, short
// enough that a dead EPMD does not stall a connection attempt.
const DefaultClientTimeout = 5 * time.Second

// ErrNotFound is returned by LookupPort when EPMD knows no node of that name.
var ErrNotFound = errors.New("epmd: node not registered")

// ErrRegistrationRefused is returned by Register when EPMD answers with an
// error result: usually the name is already registered by a live node, or the
// EPMD refuses registrations from this address.
var ErrRegistrationRefused = errors.New("epmd: registration refused")

// Client talks to one EPMD. The zero value asks 127.0.0.1:4369 with
// DefaultClientTimeout. Safe for concurrent use.
type Client struct {
	// Addr is the EPMD's host:port. "" means "127.0.0.1:4369".
	Addr string
	// Timeout bounds each request when ctx has no earlier deadline; for
	// Register it bounds the registration exchange only. Zero means
	// DefaultClientTimeout.
	Timeout time.Duration
	// Dialer dials the EPMD; nil means a zero net.Dialer.
	Dialer *net.Dialer
}

func (c *Client) addr() string {
	if c.Addr == "" {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(DefaultPort))
	}
	return c.Addr
}

func (c *Client) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultClientTimeout
	}
	return c.Timeout
}

// exchange dials, runs fn under a deadline bounded by ctx and the timeout,
// and returns the connection (still open) on success when keep is true.
func (c *Client) exchange(ctx context.Context, keep bool, fn func(net.Conn) error) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	d := c.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	conn, err := d.DialContext(ctx, "tcp", c.addr())
	if err != nil {
		return nil, fmt.Errorf("epmd: dial %s: %w", c.addr(), err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Unblock fn when ctx is cancelled before the deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	err = fn(conn)
	if !stop() {
		// ctx ended: the deadline may already be in the past.
		if err == nil && keep {
			err = ctx.Err()
		}
	}
	if err != nil || !keep {
		conn.Close()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The connection's deadline is ctx's, and it fired first.
			err = fmt.Errorf("%w (%w)", err, context.DeadlineExceeded)
		}
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// Register registers node with the EPMD and keeps the connection open: the
// registration lasts until Registration.Close, or until the EPMD closes the
// connection (see Registration.Done).
func (c *Client) Register(ctx context.Context, node NodeInfo) (*Registration, error) {
	req := &Alive2Req{Node: node}
	pkt, err := req.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	var resp Alive2Resp
	conn, err := c.exchange(ctx, true, func(conn net.Conn) error {
		if _, err := conn.Write(pkt); err != nil {
			return fmt.Errorf("epmd: send ALIVE2_REQ to %s: %w", c.addr(), err)
		}
		resp, err = ReadAlive2Resp(conn, -1)
		if err != nil {
			return fmt.Errorf("epmd: ALIVE2 answer from %s: %w", c.addr(), err)
		}
		if resp.Result != CodeOK {
			return fmt.Errorf("%w: EPMD %s answered result %d for %q (is the name already in use?)", ErrRegistrationRefused, c.addr(), resp.Result, node.Name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r := &Registration{Creation: resp.Creation, conn: conn, done: make(chan struct{})}
	go r.watch()
	return r, nil
}

// Registration is a live EPMD registration.
type Registration struct {
	// Creation is the creation the EPMD gave this registration.
	Creation uint32

	conn      net.Conn
	done      chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	err       error
	closed    bool
}

func (r *Registration) watch() {
	defer close(r.done)
	buf := make([]byte, 64)
	for {
		if _, err := r.conn.Read(buf); err != nil {
			r.mu.Lock()
			if !r.closed {
				if errors.Is(err, io.EOF) {
					err = errors.New("epmd: the EPMD closed the registration connection")
				}
				r.err = err
			}
			r.mu.Unlock()
			return
		}
	}
}

// Done is closed when the registration ends: Close was called, or the EPMD
// dropped the connection (then Err says why).
func (r *Registration) Done() <-chan struct{} { return r.done }

// Err returns why the registration ended on its own, nil while it is live or
// after Close.
func (r *Registration) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close drops the registration (EPMD unregisters the name) and waits for its
// goroutine. Safe to call more than once.
func (r *Registration) Close() error {
	var err error
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		err = r.conn.Close()
	})
	<-r.done
	return err
}

// LookupPort asks the EPMD for the node registered as name (PORT_PLEASE2_REQ).
// It returns an error wrapping ErrNotFound when no such node is registered.
func (c *Client) LookupPort(ctx context.Context, name string) (NodeInfo, error) {
	pkt, err := (&PortPlease2Req{Name: name}).AppendBinary(nil)
	if err != nil {
		return NodeInfo{}, err
	}
	var resp Port2Resp
	_, err = c.exchange(ctx, false, func(conn net.Conn) error {
		if _, err := conn.Write(pkt); err != nil {
			return fmt.Errorf("epmd: send PORT_PLEASE2_REQ to %s: %w", c.addr(), err)
		}
		resp, err = ReadPort2Resp(conn)
		if err != nil {
			return fmt.Errorf("epmd: PORT2 answer from %s: %w", c.addr(), err)
		}
		return nil
	})
	if err != nil {
		return NodeInfo{}, err
	}
	if resp.Result != CodeOK {
		return NodeInfo{}, fmt.Errorf("%w: %q at %s", ErrNotFound, name, c.addr())
	}
	if resp.Node.Name != name {
		return NodeInfo{}, fmt.Errorf("%w: asked for %q, EPMD %s answered %q", ErrMalformed, name, c.addr(), resp.Node.Name)
	}
	return resp.Node, nil
}

// Names lists the nodes registered with the EPMD (NAMES_REQ).
func (c *Client) Names(ctx context.Context) (NamesResp, error) {
	pkt, _ := (&NamesReq{}).AppendBinary(nil)
	var resp NamesResp
	_, err := c.exchange(ctx, false, func(conn net.Conn) error {
		if _, err := conn.Write(pkt); err != nil {
			return fmt.Errorf("epmd: send NAMES_REQ to %s: %w", c.addr(), err)
		}
		b, err := io.ReadAll(io.LimitReader(conn, MaxNamesRespLen+1))
		if err != nil {
			return fmt.Errorf("epmd: NAMES answer from %s: %w", c.addr(), err)
		}
		resp, err = DecodeNamesResp(b)
		if err != nil {
			return fmt.Errorf("epmd: NAMES answer from %s: %w", c.addr(), err)
		}
		return nil
	})
	return resp, err
}
