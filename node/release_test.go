package node_test

import (
	"testing"

	"github.com/gonode/gonode/internal/beamtest"
)

// forEachRelease runs f against the releases this package's wire layer is
// proven on.
func forEachRelease(t *testing.T, f func(t *testing.T, rel beamtest.Release)) {
	t.Run(beamtest.Host.Name, func(t *testing.T) { f(t, beamtest.Host) })
}
