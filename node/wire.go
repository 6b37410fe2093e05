package node

import (
	"log/slog"
	"time"

	ergonode "github.com/ergo-services/ergo/node"
	ergodist "github.com/ergo-services/ergo/proto/dist"
)

// wire is the one place where the node's distribution layer is chosen: the
// handshake, the connection protocol and the registrar (EPMD) that ergo is
// given through node.Options. Everything else in the package is independent
// of which implementation sits here.
type wire struct {
	handshake ergonode.HandshakeInterface
	proto     ergonode.ProtoInterface
	registrar ergonode.Registrar
	onClose   func()
	created   uint32
}

// connections is what the wire layer may ask the node about live connections
// (the handshake's simultaneous-connect and `alive` rules need it).
type connections interface {
	IsConnected(peer string) bool
	Disconnect(peer string) error
}

func newWire(cfg Config, log *slog.Logger, obs Observer, conns connections) (*wire, error) {
	protoOpts := ergonode.DefaultProtoOptions()
	protoOpts.NumHandlers = 1 // G10: one handler keeps per-pair ordering
	protoOpts.FragmentationUnit = 60000
	w := &wire{
		handshake: ergodist.CreateHandshake(ergodist.HandshakeOptions{
			Timeout: cfg.HandshakeTimeout,
			Version: ergodist.HandshakeVersion6, // G8
		}),
		proto:     ergodist.CreateProto(protoOpts),
		registrar: ergodist.CreateRegistrarWithLocalEPMD("", uint16(cfg.EPMDPort)),
		created:   uint32(time.Now().Unix()),
	}
	return w, nil
}

// creation is the creation number the node starts with.
func (w *wire) creation() uint32 { return w.created }

func (w *wire) close() {
	if w.onClose != nil {
		w.onClose()
	}
}
