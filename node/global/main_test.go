package global_test

import (
	"testing"

	"github.com/gonode/gonode/internal/testutil"
)

// TestMain runs the package's tests in a network namespace of their own (the
// BEAM nodes they start and EPMD's port are theirs alone) and checks that
// they leave no goroutine behind.
func TestMain(m *testing.M) { testutil.MainInNetns(m) }
