package metrics_test

import (
	"testing"

	"github.com/gonode/gonode/internal/testutil"
)

// TestMain runs the tests in a network namespace of their own (they start BEAM
// nodes, an embedded EPMD on port 4369 and DNS servers) and checks that no
// goroutine outlives them.
func TestMain(m *testing.M) { testutil.MainInNetns(m) }
