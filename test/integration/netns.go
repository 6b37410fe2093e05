//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDir is where iproute2 keeps named network namespaces.
const netnsDir = "/run/netns"

// etcNetnsDir is where `ip netns exec` finds a namespace's /etc overrides.
const etcNetnsDir = "/etc/netns"

// ErrCommand wraps the failure of an external command.
var ErrCommand = errors.New("command failed")

// run runs argv and returns its error with the combined output.
func run(argv ...string) error {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s: %v: %s", ErrCommand, strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// addNetns creates a named network namespace with lo up.
func addNetns(name string) error {
	if err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	return run("ip", "-n", name, "link", "set", "lo", "up")
}

// netnsPIDs lists the processes in a namespace, this one excepted: a
// goroutine of inNetns that ran on the main thread leaves that thread (which
// Go never ends) in the namespace, and `ip netns pids` goes by the main
// thread's namespace.
func netnsPIDs(name string) []int {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killNetns SIGKILLs every process in the namespace and waits (bounded) until
// none is left. It reports the pids still alive after the bound.
func killNetns(name string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := netnsPIDs(name)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in namespace %s", pids, name)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond) // poll interval of a bounded wait for the kernel to reap
	}
}

// delNetns kills what runs in the namespace, deletes it (and so its veth
// ends) and removes /etc/netns/<name>.
func delNetns(name string) error {
	var errs []error
	if err := killNetns(name); err != nil {
		errs = append(errs, err)
	}
	if _, err := os.Stat(filepath.Join(netnsDir, name)); err == nil {
		if err := run("ip", "netns", "del", name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(etcNetnsDir, name)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// inNetns runs f on an OS thread that has entered the named network namespace.
// Sockets f creates belong to that namespace for their whole life. The thread
// is never unlocked: it exits with the goroutine instead of going back to the
// scheduler in the wrong namespace.
func inNetns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(filepath.Join(netnsDir, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", name, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		_ = unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// dialIn dials addr from the named namespace.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// listenIn listens on addr in the named namespace.
func listenIn(ns, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := inNetns(ns, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}
