package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gonode/gonode/internal/beamtest"
)

// elixirBench is compiled on the Elixir nodes (defmodule compiles, so the
// loops run as compiled code, not through the evaluator):
//   - Echo, a GenServer answering a call with the request: the BEAM server
//     of the call cells;
//   - Counter, a receive loop counting messages, armed by {:bench_arm, N,
//     Pid} to send :bench_done to Pid at the N-th: the receiver of the
//     one-way cells (gonode's counterpart is goCounter);
//   - Caller.run, N processes each calling a target until a deadline and
//     timing each call: the Elixir callers;
//   - Sender.run, one process sending N messages to a counter and timing
//     until it reports.
const elixirBench = `
defmodule GonodeBench.Echo do
  use GenServer
  def init(s), do: {:ok, s}
  def handle_call(m, _from, s), do: {:reply, m, s}
end

defmodule GonodeBench.Counter do
  def start(name) do
    pid = spawn(fn -> loop(0, 0, nil) end)
    Process.register(pid, name)
    pid
  end

  def loop(n, max, notify) do
    receive do
      {:bench_arm, m, p} -> loop(0, m, p)
      _ ->
        n = n + 1
        if n == max, do: send(notify, :bench_done)
        loop(n, max, notify)
    end
  end
end

defmodule GonodeBench.Caller do
  # Returns {calls, elapsed_ns, p50_ns, p90_ns, p99_ns}.
  def run(target, callers, msg, duration_ms) do
    parent = self()
    t0 = System.monotonic_time()
    deadline = t0 + System.convert_time_unit(duration_ms, :millisecond, :native)
    pids = for _ <- 1..callers, do: spawn_link(fn -> send(parent, {:bench_lat, self(), loop(target, msg, deadline, [])}) end)
    lats = for p <- pids, do: (receive do {:bench_lat, ^p, l} -> l end)
    elapsed = System.monotonic_time() - t0
    all = lats |> List.flatten() |> Enum.sort() |> List.to_tuple()
    n = tuple_size(all)
    pct = fn q -> :erlang.convert_time_unit(elem(all, min(n - 1, div(n * q, 100))), :native, :nanosecond) end
    {n, :erlang.convert_time_unit(elapsed, :native, :nanosecond), pct.(50), pct.(90), pct.(99)}
  end

  defp loop(target, msg, deadline, acc) do
    t = System.monotonic_time()
    if t >= deadline do
      acc
    else
      _ = GenServer.call(target, msg, 60_000)
      loop(target, msg, deadline, [System.monotonic_time() - t | acc])
    end
  end
end

defmodule GonodeBench.Sender do
  # Returns the nanoseconds from the first send to the counter's report.
  def run(target, msg, n) do
    send(target, {:bench_arm, n, self()})
    t0 = System.monotonic_time()
    loop(target, msg, n)
    receive do
      :bench_done -> :erlang.convert_time_unit(System.monotonic_time() - t0, :native, :nanosecond)
    after
      120_000 -> :timeout
    end
  end

  defp loop(_, _, 0), do: :ok
  defp loop(target, msg, n), do: (send(target, msg); loop(target, msg, n - 1))
end
:ok
`

// exMsg is the Elixir expression of the term of a size.
func exMsg(size string) string {
	switch size {
	case "small":
		return "{:seq, 12345, :ok}"
	case "1KiB":
		return `:binary.copy("x", 1024)`
	case "64KiB":
		return `:binary.copy("x", 65536)`
	}
	panic("unknown size " + size)
}

// exTarget is the Elixir expression of {Name, Node}.
func exTarget(name, node string) string {
	return fmt.Sprintf(`{:%s, :"%s"}`, name, node)
}

// evalTimeout bounds one evaluation on a node: the longest is a call cell
// of a few seconds or a one-way run, which ends within 120 s.
const evalTimeout = 180 * time.Second

// eval evaluates expr on n and returns the printed value.
func eval(n *beamtest.Node, expr string) (string, error) {
	out, err := n.EvalE(expr, evalTimeout)
	if err != nil {
		return "", fmt.Errorf("%s: %w", n.Name, err)
	}
	return out, nil
}

// parseInts parses an Elixir tuple or list of integers, "{1, 2, 3}".
func parseInts(s string) ([]int64, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || !(s[0] == '{' && s[len(s)-1] == '}' || s[0] == '[' && s[len(s)-1] == ']') {
		return nil, fmt.Errorf("not a tuple of integers: %.200q", s)
	}
	var out []int64
	for f := range strings.SplitSeq(s[1:len(s)-1], ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("not a tuple of integers: %.200q", s)
		}
		out = append(out, v)
	}
	return out, nil
}

// osPid returns the operating system process id of a BEAM node.
func osPid(n *beamtest.Node) (string, error) {
	out, err := eval(n, ":os.getpid() |> List.to_string()")
	if err != nil {
		return "", err
	}
	return strings.Trim(out, `"`), nil
}

// erlOSPid is osPid for an Erlang (not Elixir) node.
func erlOSPid(n *beamtest.Node) (string, error) {
	out, err := eval(n, "os:getpid().")
	if err != nil {
		return "", err
	}
	return strings.Trim(out, `"`), nil
}

// otpVersion returns the full OTP version and the Elixir version of an
// Elixir node.
func otpVersion(n *beamtest.Node) (otp, elixir string, err error) {
	out, err := eval(n, `rel = List.to_string(:erlang.system_info(:otp_release))
v = case File.read(Path.join([List.to_string(:code.root_dir()), "releases", rel, "OTP_VERSION"])) do
  {:ok, s} -> String.trim(s)
  _ -> rel
end
{v, System.version()}`)
	if err != nil {
		return "", "", err
	}
	f := strings.Split(strings.Trim(out, "{}"), ",")
	if len(f) != 2 {
		return "", "", fmt.Errorf("versions: %q", out)
	}
	return strings.Trim(strings.TrimSpace(f[0]), `"`), strings.Trim(strings.TrimSpace(f[1]), `"`), nil
}

// erlIdleServer is a gen_server module compiled on the memory reference
// node from its forms (an `erl` node has no Elixir to define one).
var erlIdleServer = []string{
	"-module(gonode_bench_idle).",
	"-behaviour(gen_server).",
	"-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).",
	"init(S) -> {ok, S}.",
	"handle_call(M, _From, S) -> {reply, M, S}.",
	"handle_cast(_M, S) -> {noreply, S}.",
	"handle_info(_M, S) -> {noreply, S}.",
}

// erlCompileIdle is the Erlang expression that compiles and loads it.
func erlCompileIdle() string {
	var forms []string
	for _, f := range erlIdleServer {
		forms = append(forms, strconv.Quote(f))
	}
	return fmt.Sprintf(`Forms = [begin {ok, T, _} = erl_scan:string(F), {ok, Fm} = erl_parse:parse_form(T), Fm end || F <- [%s]],
{ok, M, Bin} = compile:forms(Forms), {module, M} = code:load_binary(M, "gonode_bench_idle.erl", Bin), ok.`, strings.Join(forms, ", "))
}
