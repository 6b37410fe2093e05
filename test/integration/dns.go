//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/gonode/gonode/internal/testutil"
)

// dnsServer is dnsmasq in the DNS pod, standing in for the cluster DNS: it
// answers the headless Service's A records from a hosts file of the Ready pods
// and nothing else (no upstream, no /etc/hosts), with a 1 s TTL.
type dnsServer struct {
	pod       *Pod
	hostsFile string
	fqdn      string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  testutil.SyncBuffer
}

// argv is the dnsmasq command line.
func (d *dnsServer) argv() []string {
	return []string{
		"ip", "netns", "exec", d.pod.NS,
		"dnsmasq",
		"--keep-in-foreground",
		"--conf-file=/dev/null", // not the host's /etc/dnsmasq.conf
		"--no-resolv",           // no upstream
		"--no-hosts",            // not the host's /etc/hosts
		"--addn-hosts=" + d.hostsFile,
		"--local-ttl=1",
		"--local=/cluster.local/", // anything else under cluster.local is NXDOMAIN, answered here
		"--listen-address=" + d.pod.IP.String(),
		"--bind-interfaces",
		"--user=root", // reads the hosts file again on SIGHUP, wherever it is
		"--pid-file=",
		"--log-queries",
		"--log-facility=-",
	}
}

func (d *dnsServer) start(want []string) error {
	d.mu.Lock()
	if d.cmd != nil {
		d.mu.Unlock()
		return errors.New("dnsmasq is already running")
	}
	argv := d.argv()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = &d.log
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		d.mu.Unlock()
		return fmt.Errorf("start dnsmasq: %w", err)
	}
	done := make(chan struct{})
	d.cmd, d.done = cmd, done
	d.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return d.waitAnswer(want)
}

func (d *dnsServer) stop() error {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	return nil
}

// reload makes dnsmasq read the hosts file again and waits until it answers
// want. With dnsmasq stopped it does nothing: StartDNS reads the file.
func (d *dnsServer) reload(want []string) error {
	d.mu.Lock()
	cmd := d.cmd
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload dnsmasq: %w", err)
	}
	return d.waitAnswer(want)
}

// waitAnswer polls the server from the node namespace until the Service's A
// records are exactly want (an empty want: no address at all).
func (d *dnsServer) waitAnswer(want []string) error {
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for {
		got, err := d.query()
		if err == nil && strings.Join(got, ",") == strings.Join(want, ",") {
			return nil
		}
		last = fmt.Sprintf("answer %v, error %v", got, err)
		d.mu.Lock()
		done := d.done
		d.mu.Unlock()
		select {
		case <-done:
			return fmt.Errorf("dnsmasq exited: %s", d.output())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dnsmasq does not answer %s with %v after 15s; last: %s\n%s", d.fqdn, want, last, d.output())
		}
		time.Sleep(50 * time.Millisecond) // poll interval of this bounded wait
	}
}

// query asks the DNS pod for the Service's A records.
func (d *dnsServer) query() ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(d.fqdn), dns.TypeA)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := dialIn(ctx, d.pod.c.bridgeNS, "udp4", net.JoinHostPort(d.pod.IP.String(), "53"))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	co := &dns.Conn{Conn: conn}
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	r, err := co.ReadMsg()
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	}
	var ips []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	sort.Strings(ips)
	return ips, nil
}

func (d *dnsServer) output() string { return d.log.String() }
