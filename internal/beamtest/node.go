package beamtest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options describe a BEAM node to start.
type Options struct {
	// Name is the full node name, e.g. "a@127.0.0.1" (long names).
	Name string
	// Cookie is the distribution cookie. Required.
	Cookie string
	// Elixir starts the node with `elixir` and evaluates Elixir code in Eval;
	// otherwise `erl` and Erlang expressions.
	Elixir bool
	// ErlArgs are extra arguments for the emulator (for Elixir they are passed
	// through --erl), e.g. "-start_epmd", "false", "-kernel", "net_ticktime", "8".
	ErlArgs []string
	// Env are extra environment variables, KEY=VALUE.
	Env []string
}

// Node is a running BEAM node controlled through its standard input.
type Node struct {
	Name string
	Rel  Release

	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu      sync.Mutex
	next    int
	waiting map[string]chan string
	log     bytes.Buffer
	done    chan struct{}
	exitErr error
}

// RandomCookie returns a fresh random cookie.
func RandomCookie() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "c" + hex.EncodeToString(b[:])
}

// erlLoop reads "<id> <base64 expression>" lines, evaluates the Erlang
// expression and answers "@@BT <id> <len>\n<~tp of {ok,V} | {error,C,R}>\n".
const erlLoop = `io:setopts(standard_io, [{encoding, unicode}]),
L = fun Loop() ->
  case io:get_line(standard_io, '') of
    eof -> erlang:halt(0);
    {error, _} -> erlang:halt(0);
    Line ->
      [Id, B64] = string:lexemes(string:trim(Line), " "),
      Src = unicode:characters_to_list(base64:decode(B64)),
      Res = try
          {ok, Toks, _} = erl_scan:string(Src),
          {ok, Exprs} = erl_parse:parse_exprs(Toks),
          {value, V, _} = erl_eval:exprs(Exprs, []),
          {ok, V}
        catch C:R -> {error, C, R} end,
      Out = unicode:characters_to_binary(io_lib:format("~tp", [Res])),
      io:put_chars(standard_io, [<<"@@BT ">>, Id, <<" ">>, integer_to_list(byte_size(Out)), <<"\n">>, Out, <<"\n">>]),
      Loop()
  end
end,
spawn(fun() -> L() end).`

// exLoop is erlLoop for Elixir code.
const exLoop = `:io.setopts(:standard_io, encoding: :unicode)
defmodule BeamTestLoop do
  def loop do
    case IO.read(:stdio, :line) do
      :eof -> System.halt(0)
      {:error, _} -> System.halt(0)
      line ->
        [id, b64] = String.split(String.trim(line), " ")
        src = Base.decode64!(b64)
        res =
          try do
            {v, _} = Code.eval_string(src)
            {:ok, v}
          rescue
            e -> {:error, :error, Exception.message(e)}
          catch
            k, v -> {:error, k, v}
          end
        out = inspect(res, limit: :infinity, printable_limit: :infinity)
        IO.write(:stdio, ["@@BT ", id, " ", Integer.to_string(byte_size(out)), "\n", out, "\n"])
        loop()
    end
  end
end
spawn(&BeamTestLoop.loop/0)`

// Start starts a node and waits until it evaluates expressions. The node is
// halted in t.Cleanup, and its output is printed if the test failed. It
// needs the test's network namespace (RequireNetns: a node starts epmd on
// port 4369 unless told otherwise) and the release (RequireRelease).
func Start(t testing.TB, rel Release, o Options) *Node {
	t.Helper()
	RequireNetns(t)
	prog := "erl"
	if o.Elixir {
		prog = "elixir"
	}
	RequireRelease(t, rel, prog)
	n, err := StartE(rel, o)
	if err != nil {
		t.Fatalf("start %s node %s: %v", rel.Name, o.Name, err)
	}
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("output of %s (%s):\n%s", n.Name, rel.Name, n.Output())
		}
	})
	return n
}

// StartE is Start without a testing.TB and without its prerequisite checks:
// the caller must Stop the node.
func StartE(rel Release, o Options) (*Node, error) {
	if o.Cookie == "" {
		return nil, errors.New("beamtest: a cookie is required")
	}
	var argv []string
	if o.Elixir {
		args := []string{"--name", o.Name, "--cookie", o.Cookie, "--no-halt"}
		if len(o.ErlArgs) > 0 {
			args = append(args, "--erl", strings.Join(o.ErlArgs, " "))
		}
		args = append(args, "-e", exLoop)
		argv = rel.command("elixir", args...)
	} else {
		args := append([]string{"-noshell", "-name", o.Name, "-setcookie", o.Cookie}, o.ErlArgs...)
		args = append(args, "-eval", erlLoop)
		argv = rel.command("erl", args...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = append([]string{"HOME=/tmp", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8"}, o.Env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	n := &Node{Name: o.Name, Rel: rel, cmd: cmd, stdin: stdin, waiting: map[string]chan string{}, done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{n: n}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go n.read(stdout)
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(n.done)
	}()
	// The first evaluation proves the node booted and the loop runs.
	probe := "ok."
	if o.Elixir {
		probe = ":ok"
	}
	if _, err := n.EvalE(probe, 60*time.Second); err != nil {
		n.Stop()
		return nil, fmt.Errorf("node did not come up: %w\n%s", err, n.Output())
	}
	return n, nil
}

type lockedWriter struct{ n *Node }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.n.mu.Lock()
	defer w.n.mu.Unlock()
	return w.n.log.Write(p)
}

func (n *Node) read(r io.Reader) {
	ReadReplies(r, "@@BT", func(id string, _ []string, payload string) {
		n.mu.Lock()
		ch := n.waiting[id]
		delete(n.waiting, id)
		n.mu.Unlock()
		if ch != nil {
			ch <- payload
		}
	}, func(line string) {
		n.mu.Lock()
		n.log.WriteString(line)
		n.mu.Unlock()
	})
}

// Output returns what the node printed outside evaluation answers.
func (n *Node) Output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.String()
}

// Eval evaluates expr (Erlang expressions ending in '.', or Elixir code) on
// the node and returns the value printed with ~tp (Erlang) or inspect
// (Elixir). An exception fails the test.
func (n *Node) Eval(t testing.TB, expr string) string {
	t.Helper()
	out, err := n.EvalE(expr, 60*time.Second)
	if err != nil {
		t.Fatalf("eval on %s: %s\n  %v", n.Name, expr, err)
	}
	return out
}

// ErrEval is returned by EvalE when the expression raised.
var ErrEval = errors.New("evaluation raised")

// EvalE evaluates expr with a timeout; see Eval.
func (n *Node) EvalE(expr string, timeout time.Duration) (string, error) {
	n.mu.Lock()
	n.next++
	id := strconv.Itoa(n.next)
	ch := make(chan string, 1)
	n.waiting[id] = ch
	n.mu.Unlock()
	line := id + " " + base64.StdEncoding.EncodeToString([]byte(expr)) + "\n"
	if _, err := io.WriteString(n.stdin, line); err != nil {
		return "", fmt.Errorf("write to %s: %w", n.Name, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case out := <-ch:
		out = strings.TrimSpace(out)
		for _, prefix := range []string{"{ok,", "{:ok,"} {
			if v, ok := strings.CutPrefix(out, prefix); ok {
				return strings.TrimSpace(strings.TrimSuffix(v, "}")), nil
			}
		}
		return "", fmt.Errorf("%w: %s", ErrEval, out)
	case <-n.done:
		return "", fmt.Errorf("node %s exited: %v", n.Name, n.exitError())
	case <-timer.C:
		return "", fmt.Errorf("no answer from %s within %s", n.Name, timeout)
	}
}

func (n *Node) exitError() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exitErr
}

// Done is closed when the node's process has exited.
func (n *Node) Done() <-chan struct{} { return n.done }

// Stop halts the node by closing its standard input and kills it if it has
// not exited within 10 s.
func (n *Node) Stop() {
	_ = n.stdin.Close()
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		n.Kill()
	}
}

// Kill kills the node at once (SIGKILL), as a crashed pod would die.
func (n *Node) Kill() {
	if n.cmd.Process != nil {
		_ = n.cmd.Process.Kill()
	}
	<-n.done
}
