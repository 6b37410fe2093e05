package k8s_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every informer, watch and Discoverer a test starts must end with it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
