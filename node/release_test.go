package node_test

import (
	"testing"

	"github.com/gonode/gonode/internal/beamtest"
)

// forEachRelease runs f against every release of the OTP matrix (25, 27, 29).
func forEachRelease(t *testing.T, f func(t *testing.T, rel beamtest.Release)) {
	t.Helper()
	beamtest.ForEach(t, f)
}
