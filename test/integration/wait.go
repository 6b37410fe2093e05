//go:build integration

package integration

import "time"

// WaitInterval is how often the harness (and its tests and demo) checks a
// condition it waits for with testutil.Poll: each check asks BEAM nodes,
// gonode's HTTP endpoints or DNS, so it is slower than
// testutil.DefaultInterval.
const WaitInterval = 250 * time.Millisecond
