package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/nodetest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
)

func TestMain(m *testing.M) { testutil.MainInNetns(m) }

// TestInventoryExample runs the program against a real Elixir node of
// every release of the matrix that loaded pricing.exs: Go calls Pricing
// into a Go struct, Elixir calls, casts to and sends to the Go inventory,
// and stopping Pricing reaches Go as a DOWN whose reason is the term the
// Elixir server stopped with.
func TestInventoryExample(t *testing.T) {
	// The script's text, not its path: the OTP 27 and 29 nodes run in
	// chroots that do not see the repository.
	script, err := os.ReadFile("pricing.exs")
	if err != nil {
		t.Fatal(err)
	}
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		ex := beamtest.Start(t, rel, beamtest.Options{Name: nodetest.Uniq("pricing") + "@127.0.0.1", Cookie: cookie, Elixir: true})
		if got := ex.Eval(t, string(script)+"\n{:ok, _} = Pricing.start()\n:ok"); got != ":ok" {
			t.Fatalf("loading pricing.exs: %s", got)
		}

		out := &testutil.SyncBuffer{}
		o := options{name: nodetest.Uniq("shop") + "@127.0.0.1", pricing: ex.Name, cookie: node.Cookie(cookie)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- run(ctx, o, out, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
		t.Cleanup(func() {
			cancel()
			<-done
		})
		waitFor := func(line string) {
			t.Helper()
			testutil.Eventually(t, 20*time.Second, func() (bool, string) {
				return strings.Contains(out.String(), line+"\n"), out.String()
			})
		}

		waitFor("price sku-1 1299 eur")
		waitFor("ready")
		got := ex.Eval(t, fmt.Sprintf(`Shop.exercise(:"%s")`, o.name))
		if want := `{:ok, 7, 7, {:error, "negative quantity -1 for sku-2"}, 0}`; got != want {
			t.Fatalf("Shop.exercise answered %s, want %s", got, want)
		}
		waitFor("event restock [1 2 3]")

		ex.Eval(t, `GenServer.stop(:pricing, {:shutdown, %{at: 1}})`)
		waitFor("pricing down: {shutdown,#{at => 1}}")
		select {
		case err := <-done:
			done <- err
			if err != nil {
				t.Fatalf("the program ended with %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("the program did not end after the DOWN; output:\n%s", out.String())
		}
	})
}

// TestInventoryExampleBadCookie: a cookie that does not match the Elixir
// node's is reported as such, not as an unreachable node.
func TestInventoryExampleBadCookie(t *testing.T) {
	rel := beamtest.Host
	beamtest.RequireRelease(t, rel, "elixir")
	ex := beamtest.Start(t, rel, beamtest.Options{Name: nodetest.Uniq("pricing") + "@127.0.0.1", Cookie: beamtest.RandomCookie(), Elixir: true})
	o := options{name: nodetest.Uniq("shop") + "@127.0.0.1", pricing: ex.Name, cookie: node.Cookie(beamtest.RandomCookie())}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, o, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "the cookie does not match") {
		t.Fatalf("run with a wrong cookie: %v, want the cookie named as the cause", err)
	}
}
