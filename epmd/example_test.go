package epmd_test

import (
	"bytes"
	"context"
	"fmt"
	"net"

	"github.com/gonode/gonode/epmd"
)

// A Server on a loopback port, a node registering with it, and a lookup.
func ExampleServer() {
	cfg := epmd.DefaultConfig()
	cfg.Addrs = []string{"127.0.0.1:0"} // production keeps the default, port 4369 on IPv4 and IPv6
	started := make(chan []net.Addr, 1)
	srv, err := epmd.New(cfg, epmd.WithNotifyStarted(func(a []net.Addr) { started <- a }))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	addr := (<-started)[0].String()

	c := &epmd.Client{Addr: addr}
	reg, err := c.Register(ctx, epmd.NodeInfo{
		Name: "gonode", Port: 9100, Type: epmd.NodeTypeNormal,
		HighestVersion: epmd.DistVersion6, LowestVersion: epmd.DistVersion6,
	})
	if err != nil {
		fmt.Println(err)
		srv.Close()
		return
	}
	info, err := c.LookupPort(ctx, "gonode")
	fmt.Println(info.Name, info.Port, err)

	reg.Close() // unregisters
	cancel()
	fmt.Println(<-served)
	// Output:
	// gonode 9100 <nil>
	// <nil>
}

// Decoding a request read from a connection.
func ExampleReadRequest() {
	pkt, _ := (&epmd.PortPlease2Req{Name: "a"}).AppendBinary(nil)
	fmt.Printf("% x\n", pkt)
	req, err := epmd.ReadRequest(bytes.NewReader(pkt))
	fmt.Printf("%s %+v %v\n", req.Kind(), req, err)
	// Output:
	// 00 02 7a 61
	// port_please2 &{Name:a} <nil>
}
