#!/usr/bin/env bash
# Installs what gonode's tests and demo need on Debian (run as root):
# Erlang/OTP and Elixir (the host's OTP 25 leg of the matrix), dnsmasq (the real
# DNS server of the integration tests), iproute2 (network namespaces),
# debootstrap (the OTP 27 and 29 chroots), make. Go 1.26 must already be
# installed (/usr/local/go).
set -euo pipefail
pkgs=(erlang-nox elixir dnsmasq iproute2 debootstrap make procps)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
# dnsmasq's package may start a system-wide daemon; the tests run their own.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now dnsmasq >/dev/null 2>&1 || true; fi
pkill -x dnsmasq 2>/dev/null || true
if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    echo "note: add /usr/local/go/bin to PATH"
  else
    echo "error: Go 1.26 is required (install it to /usr/local/go)" >&2
    exit 1
  fi
fi
