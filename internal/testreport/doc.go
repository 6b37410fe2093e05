// Command testreport reads the event stream of `go test -json` on standard
// input and writes a report a person can read: a line per package as it
// ends, then every failed test and every skipped test with its own output
// (the failure, or the reason it skipped), then the closing line
// "N passed, N failed, N skipped". It exits 1 if any test failed or skipped,
// if a package failed outside its tests (a build error, a panic, a leak
// check in TestMain), or if the stream held no test at all.
//
// scripts/test.sh runs the unit tests through it under GONODE_TEST_STRICT=1
// (see internal/beamtest): there a missing prerequisite already fails its
// test, and any other skip (a t.Skip left in a test) fails the run here, so
// `make test` passes only if every test ran and passed.
//
// Usage:
//
//	go test -json ./... | go run ./internal/testreport
//
// Design: the report is built by a pure function over the events (report.go)
// and tested on recorded streams; main only wires standard input and output.
// It imports only the standard library, and nothing imports it.
package main
