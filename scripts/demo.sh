#!/usr/bin/env bash
# The demo: 3 Elixir pods and 1 gonode pod form one Erlang mesh on a small
# Kubernetes-like cluster of network namespaces (a bridge, one namespace per
# pod with its own IP and resolv.conf, dnsmasq serving the headless Service).
# Prints the mesh from both sides and one call each way, then the mesh again
# every 10 s until Ctrl-C; everything is torn down on Ctrl-C or SIGTERM.
#
# Needs root and what scripts/install-deps.sh installs (iproute2, dnsmasq,
# erlang-nox, elixir, Go); installs nothing itself. Flags are passed to the
# demo program (test/integration/cmd/demo): --elixir N, --gonode N,
# --release otp25|otp27|otp29, --every DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "demo.sh: needs root to create network namespaces (try: sudo $0)" >&2
  exit 1
fi
missing=()
for prog in go ip unshare dnsmasq elixir erl; do
  command -v "$prog" >/dev/null 2>&1 || missing+=("$prog")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "demo.sh: missing ${missing[*]}: run scripts/install-deps.sh first" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -tags integration -o "$tmp/demo" ./test/integration/cmd/demo

# Run the demo as a child and hand it INT/TERM, so it always tears down.
"$tmp/demo" "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM
status=0
wait "$pid" || status=$?
while kill -0 "$pid" 2>/dev/null; do
  status=0
  wait "$pid" || status=$?
done
exit "$status"
