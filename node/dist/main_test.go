package dist

import (
	"os"
	"testing"

	"github.com/gonode/gonode/internal/beamtest"
)

// TestMain runs the package's tests in a network namespace of their own, so
// the BEAM nodes they start and the EPMD port they use are theirs alone.
func TestMain(m *testing.M) { os.Exit(beamtest.RunInNetns(m)) }
