package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/gonode/gonode/node"
)

// A peer's rpc server asks every node it connects to for its features. When
// the answer is ready only after the peer has disconnected (a BEAM that
// pings, then calls erlang:disconnect_node, while gonode is busy), gonode
// must not dial the peer again to deliver it: the peer's disconnect stands.
// Before, the late answer reconnected the peer (ergo connects on send), and
// a test waiting for the disconnect saw the peer come back.
func TestLateFeaturesReplyDoesNotReconnect(t *testing.T) {
	gn, _ := startGo(t, uniq("go")+"@127.0.0.1", "features-cookie")
	peer, _ := startGo(t, uniq("peer")+"@127.0.0.1", "features-cookie")

	rex := gn.Ergo().ProcessByName(node.RexName)
	if rex == nil {
		t.Fatal("no rex process")
	}
	// The request as the peer's rpc server sends it, arriving after the
	// connection it came on has gone.
	from := etf.Pid{Node: etf.Atom(peer.Name()), ID: 1000, Creation: 1}
	if err := rex.Send(node.RexName, etf.Tuple{from, etf.Atom("features_request")}); err != nil {
		t.Fatal(err)
	}
	// rex handles its messages in order: once it has answered this call, it
	// has handled the request.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := gn.Call(ctx, node.RexName, etf.Atom("sync")); err != nil {
		t.Fatal(err)
	}
	if gn.IsConnected(peer.Name()) || peer.IsConnected(gn.Name()) {
		t.Fatalf("a features reply to a disconnected peer connected it: gonode %v, peer %v", gn.Connected(), peer.Connected())
	}

}
