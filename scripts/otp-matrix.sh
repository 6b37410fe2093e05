#!/usr/bin/env bash
# Builds (or reuses) the OTP matrix used by the tests:
#   otp25: the host's Debian bookworm erlang-nox + elixir (OTP 25.2, Elixir 1.14)
#   otp27: a trixie chroot  (OTP 27.3, Elixir 1.18)
#   otp29: a sid chroot     (OTP 29.1, Elixir 1.20)
# Chroots are cached outside the repo in $GONODE_OTP_CACHE (default /var/cache/gonode/otp)
# and reused when present. Prints one line per release: "<label> <root>" (root "/" for the host).
set -euo pipefail

cache=${GONODE_OTP_CACHE:-/var/cache/gonode/otp}
mkdir -p "$cache"

need_host() {
  local missing=()
  for p in erlang-nox elixir debootstrap; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
  fi
}

build() { # suite dir
  local suite=$1 dir=$2
  if [ -x "$dir/usr/bin/erl" ] && [ -x "$dir/usr/bin/elixir" ] && [ -f "$dir/.gonode-ready" ]; then
    return 0
  fi
  rm -rf "$dir.tmp"
  echo "building $suite chroot in $dir (about a minute)" >&2
  debootstrap --variant=minbase --include=erlang-nox,elixir "$suite" "$dir.tmp" >&2
  touch "$dir.tmp/.gonode-ready"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

need_host
build trixie "$cache/trixie" &
p1=$!
build sid "$cache/sid" &
p2=$!
wait $p1
wait $p2

echo "otp25 /"
echo "otp27 $cache/trixie"
echo "otp29 $cache/sid"
