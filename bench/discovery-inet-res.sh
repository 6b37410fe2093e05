#!/bin/sh
# Compares gonode's DNS resolver with Erlang's inet_res resolving the same
# 4,000-record A answer from the same in-process DNS server on 127.0.0.1.
# Usage: bench/discovery-inet-res.sh [-n RUNS] [-rounds R] [-records N] [-erl PATH]
set -eu
cd "$(dirname "$0")/.."
exec go run ./bench/discovery-inet-res "$@"
