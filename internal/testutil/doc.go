// Package testutil holds the small helpers that gonode's test suites share:
// a log buffer safe for concurrent writers (SyncBuffer), a bounded poll that
// reports the last state it saw (Poll, Eventually, EventuallyNamed), a
// bounded receive from a channel (Receive), a goroutine that runs until the
// test's cleanup and has its error checked (Background), a TCP peer that
// accepts and never answers (SilentListener), and the TestMain of packages
// that need a network namespace of their own and must leave no goroutine
// behind (MainInNetns).
//
// Tests wait with a bounded poll, never with a sleep: the condition returns
// whether it holds and a description of what it saw, and a poll that runs out
// of time fails with the last description, so a failure says what the test
// was waiting for and how far it got:
//
//	testutil.Eventually(t, 10*time.Second, func() (bool, string) {
//		peers := n.Connected()
//		return len(peers) == 2, fmt.Sprintf("connected %v", peers)
//	})
//
// Design: the package is for tests only. It imports the standard library,
// go.uber.org/goleak and internal/beamtest, and nothing of gonode's public
// packages, so every package's tests may import it, including in-package
// tests of node, epmd, discovery and metrics, without an import cycle.
package testutil
