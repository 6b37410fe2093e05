// Package beamtest runs real BEAM nodes (Erlang/OTP and Elixir) for gonode's
// tests, isolated in a network namespace of the test binary's own.
//
// A test package that starts BEAM nodes calls RunInNetns from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(beamtest.RunInNetns(m)) }
//
// As root, RunInNetns creates a fresh network namespace with only loopback
// up, re-executes the test binary inside it (so port 4369 and every other
// port is the test's own), removes any process left in it, and deletes it.
// Without root (or iproute2) it runs the tests in place: the pure ones pass
// anywhere, and each test that needs the namespace stops at RequireNetns.
//
// Prerequisites: a test that needs something a plain `go test ./...` by any
// user may lack (root and the namespace, a BEAM release, a program) calls
// RequireNetns, RequireRelease or Missing. Start, ForEach and Releases call
// them for their callers. A missing prerequisite skips the test and names
// what is missing; with GONODE_TEST_STRICT=1, which scripts/test.sh (make
// test, CI) sets, it fails the test instead.
//
// Matrix returns the OTP matrix: the host's Debian OTP 25 and the OTP 27 and
// 29 chroots that scripts/otp-matrix.sh builds. Start runs an `erl` (or
// `elixir`) node of a release with a control loop on its standard input, so
// the test can evaluate expressions on it with Eval and read their results.
// Closing standard input halts the node; Cleanup does so for every node.
// ReadReplies reads the framed answers of such a loop; test/integration's
// Elixir pods, whose loop is their own, read theirs with it too.
//
// This package is for tests only and imports nothing of gonode's.
package beamtest
