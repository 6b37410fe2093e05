package beamtest

import (
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(RunInNetns(m)) }

// TestMatrixNodesTalk proves the harness itself: on every release an Erlang
// and an Elixir node start, evaluate code, and reach each other.
func TestMatrixNodesTalk(t *testing.T) {
	ForEach(t, func(t *testing.T, rel Release) {
		cookie := RandomCookie()
		a := Start(t, rel, Options{Name: "a_" + rel.Name + "@127.0.0.1", Cookie: cookie})
		b := Start(t, rel, Options{Name: "b_" + rel.Name + "@127.0.0.1", Cookie: cookie, Elixir: true})
		if got := a.Eval(t, "erlang:system_info(otp_release)."); !strings.Contains(got, strings.TrimPrefix(rel.Name, "otp")) {
			t.Fatalf("otp_release = %s, want %s", got, rel.Name)
		}
		if got := b.Eval(t, `Node.ping(:"`+a.Name+`")`); got != ":pong" {
			t.Fatalf("Node.ping = %s", got)
		}
		if got := a.Eval(t, "nodes()."); !strings.Contains(got, b.Name) {
			t.Fatalf("nodes() = %s, want %s listed", got, b.Name)
		}
		if _, err := a.EvalE("1/0.", 5e9); err == nil {
			t.Fatal("an exception was not reported")
		}
	})
}
