package metrics_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/gonode/gonode/internal/beamtest"
)

// TestMain runs the tests in a network namespace of their own (they start BEAM
// nodes, an embedded EPMD on port 4369 and DNS servers) and checks that no
// goroutine outlives them.
func TestMain(m *testing.M) {
	if !beamtest.InNetns() {
		os.Exit(beamtest.RunInNetns(m))
	}
	goleak.VerifyTestMain(m)
}
