//go:build integration

package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestElixirMeshViaDNS proves the harness without gonode: three Elixir pods,
// each with its own IP, EPMD and resolv.conf, find each other through the
// headless Service's DNS answer and form a full mesh, on every release.
func TestElixirMeshViaDNS(t *testing.T) {
	rels, err := MatrixReleases()
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range rels {
		t.Run(rel.Name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			pods := make([]peerLister, 3)
			for i := range pods {
				pods[i] = startElixir(t, c, fmt.Sprintf("ex%d", i+1), ElixirOptions{Release: rel}, true)
			}
			otp, err := pods[0].(*ElixirPod).EvalE(`List.to_string(:erlang.system_info(:otp_release))`, 20*time.Second)
			if err != nil || "otp"+otp != rel.Name {
				t.Fatalf("otp_release = %q (%v), want %s", otp, err, rel.Name)
			}
			eventually(t, 60*time.Second, "full mesh", func() (bool, string) { return meshState(pods...) })

			// The pods resolve through their resolv.conf: the short name
			// expands through the search path, as in a pod. (The answer may
			// be cached for its 1 s TTL, hence the wait.)
			ex := pods[0].(*ElixirPod)
			want := strings.Join(c.ReadyIPs(), " ")
			eventually(t, 20*time.Second, "short name resolves in the pod", func() (bool, string) {
				got, err := ex.EvalE(`{:ok, {:hostent, _, _, :inet, _, a}} = :inet_res.getbyname('`+c.Config.Service+`', :a); a |> Enum.map(&to_string(:inet.ntoa(&1))) |> Enum.sort() |> Enum.join(" ")`, 20*time.Second)
				return err == nil && got == want, fmt.Sprintf("%s resolves to %q (%v), want %q", c.Config.Service, got, err, want)
			})
			if got, err := ex.EvalE(`GenServer.call({:echo, :"`+pods[1].NodeName()+`"}, {:hello, 1})`, 20*time.Second); err != nil || got != "{:hello, 1}" {
				t.Fatalf("call :echo on %s = %q, %v", pods[1].NodeName(), got, err)
			}
		})
	}
}
