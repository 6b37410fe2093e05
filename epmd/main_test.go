package epmd_test

import (
	"testing"

	"github.com/gonode/gonode/internal/testutil"
)

// TestMain runs the tests in a network namespace of their own (port 4369 and
// the 198.18.0.0/15 addresses some tests add are theirs alone) and checks
// that no goroutine outlives them.
func TestMain(m *testing.M) { testutil.MainInNetns(m) }
