// Package meshview is how the container suite (test/compose) and the
// Kubernetes suite (test/e2e) check a full mesh: Elixir code that one
// Elixir node of the cluster runs to print every node's visible peers,
// and the comparison of that view with the nodes that should be there.
// It is for tests only.
package meshview

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Code prints one line per node the Elixir node sees, itself included: the
// node's name and then the names of its visible peers. An Elixir node's
// peers come from :rpc (Node.list/0), a gonode node's from its built-in
// gonode server (info's peers).
const Code = `
peers = fn n ->
  if n == node() do
    Node.list()
  else
    case :rpc.call(n, Node, :list, [], 5000) do
      l when is_list(l) -> l
      _ ->
        try do
          GenServer.call({:gonode, n}, :info, 5000)[:peers]
        catch
          :exit, r -> [:"error:#{inspect(r)}"]
        end
    end
  end
end
for n <- Enum.sort([node() | Node.list()]) do
  IO.puts(Enum.join([n | Enum.sort(peers.(n))], " "))
end
`

// Parse reads what Code printed: each node of the cluster (its name starts
// with basename@) and its peers of the cluster, sorted. Other names (the
// hidden node a release's rpc command runs from) are left out.
func Parse(out, basename string) map[string][]string {
	view := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || !strings.HasPrefix(f[0], basename+"@") {
			continue
		}
		var peers []string
		for _, p := range f[1:] {
			if strings.HasPrefix(p, basename+"@") {
				peers = append(peers, p)
			}
		}
		sort.Strings(peers)
		view[f[0]] = peers
	}
	return view
}

// Full reports whether view is the full mesh of the nodes want: each one
// connected to every other and to nothing else. state says what differs,
// one line a node; kind names what runs a node ("pod", "container").
func Full(view map[string][]string, want []string, kind string) (ok bool, state string) {
	want = slices.Sorted(slices.Values(want))
	var bad []string
	for _, n := range want {
		got, seen := view[n]
		if !seen {
			bad = append(bad, n+": not connected to the observer")
			continue
		}
		exp := slices.DeleteFunc(slices.Clone(want), func(o string) bool { return o == n })
		if !slices.Equal(got, exp) {
			bad = append(bad, fmt.Sprintf("%s: peers %v, want %v", n, got, exp))
		}
	}
	for n := range view {
		if !slices.Contains(want, n) {
			bad = append(bad, fmt.Sprintf("%s: connected but no running %s has it", n, kind))
		}
	}
	sort.Strings(bad)
	return len(bad) == 0, strings.Join(bad, "\n")
}
