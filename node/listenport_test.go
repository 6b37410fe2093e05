package node_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/node"
)

// ListenPort reports the port the node really listens on: the one a BEAM
// node is told by EPMD.
func TestListenPortIsTheRegisteredOne(t *testing.T) {
	cookie := beamtest.RandomCookie()
	base := uniq("go")
	gn, _ := startGo(t, base+"@127.0.0.1", node.Cookie(cookie))
	if gn.ListenPort() == 0 {
		t.Fatal("ListenPort() = 0 after Start")
	}
	erl := beamtest.Start(t, beamtest.Host, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
	got := erl.Eval(t, fmt.Sprintf(`{port, P, _} = erl_epmd:port_please("%s", {127,0,0,1}), P.`, base))
	if p, err := strconv.Atoi(strings.TrimSpace(got)); err != nil || p != gn.ListenPort() {
		t.Fatalf("EPMD says %s listens on %s, ListenPort() = %d", base, got, gn.ListenPort())
	}
}
