#!/bin/sh
# make bench: the whole benchmark suite in one run (bench/suite), then its
# charts (bench/plot, a module of its own so that the plotting library stays
# out of gonode's go.mod). Needs root (the BEAM nodes run in a network
# namespace of the suite's own) and a quiet machine: the suite refuses to
# publish when the 1-minute load average is above 1.5 at the start or the
# end, and exits non-zero (2: busy at the start, 3: at the end).
#
# Usage: scripts/bench.sh [suite flags]
#   (none)                 the full run, OTP 25/27/29, about 10 minutes on 2 cores
#   -quick                 development: OTP 25 only, short cells, under 2 minutes (never publishable)
#   -allow-busy            write the output anyway, marked NOT PUBLISHABLE
#   -otp otp25,otp27       the releases to measure against
# `go run ./bench/suite -h` lists every flag.
set -eu
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
results=bench/results
charts=docs/bench
go build -o "${TMPDIR:-/tmp}/gonode-bench-suite.$$" ./bench/suite
trap 'rm -f "${TMPDIR:-/tmp}/gonode-bench-suite.$$"' EXIT
"${TMPDIR:-/tmp}/gonode-bench-suite.$$" -results "$results" -charts "$charts" "$@"
(cd bench/plot && go run . -in "../../$results/latest.json" -out "../../$charts")
