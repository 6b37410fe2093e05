#!/bin/sh
# Runs node/dist's BenchmarkDistVsBEAM for two revisions, alternating them,
# and prints per cell the median and range of each one's ratios to BEAM.
# Usage (as root): bench/dist-compare.sh [-runs N] [-bench REGEXP] REV_A REV_B
set -eu
cd "$(dirname "$0")/.."
exec go run ./bench/dist-compare "$@"
