package dist_test

import (
	"fmt"
	"time"

	"github.com/gonode/gonode/node/dist"
)

// A hidden node with a shorter setup bound. Config.Connections, left nil
// here, tells the handshake about established connections; the node package
// gives it a view of its Node.
func ExampleNewHandshake() {
	cfg := dist.DefaultHandshakeConfig()
	cfg.Hidden = true
	cfg.HandshakeTimeout = 3 * time.Second
	hs, err := dist.NewHandshake(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("version:", hs.Version())
	fmt.Println("published:", hs.Flags().Has(dist.FlagPublished))
	fmt.Println("atom cache:", hs.Flags().Has(dist.FlagDistHdrAtomCache))
	fmt.Println("OTP 26+ ready:", hs.Flags().Has(dist.FlagsMandatory25|dist.FlagsMandatory26))
	// Output:
	// version: 6
	// published: false
	// atom cache: false
	// OTP 26+ ready: true
}
