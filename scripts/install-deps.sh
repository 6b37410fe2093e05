#!/usr/bin/env bash
# Installs what gonode's tests and demo need on Debian (run as root):
# Erlang/OTP and Elixir (the host's OTP 25 leg of the matrix), dnsmasq-base
# (the dnsmasq program, the real DNS server of the integration tests, without
# the dnsmasq package's system-wide daemon), iproute2 (network namespaces),
# debootstrap (the OTP 27 and 29 chroots, the e2e suite's images), make; and
# for the single-node Kubernetes of the e2e suite (scripts/k8s-up.sh):
# containerd, runc, containernetworking-plugins (the bridge, host-local and
# loopback CNI plugins), iptables and conntrack (kube-proxy), openssl (the
# cluster's certificates), util-linux (unshare, nsenter) and nftables (the
# suite compares `nft list ruleset` before and after the cluster); and for
# the compose suite (test/compose): podman with netavark and aardvark-dns
# (the compose network's bridge and its DNS) and docker-compose, which
# drives podman's Docker API (Prometheus's image is built from the
# prometheus package's .deb, downloaded, not installed). Go 1.26
# must already be installed (/usr/local/go).
#
# It installs packages and changes nothing else: a DNS server the machine
# already runs (a dnsmasq daemon included) is left alone. The tests start
# their own dnsmasq inside network namespaces of their own, on their own
# addresses, with no configuration, hosts or pid file of the machine's, and
# stop only the processes they started.
set -euo pipefail
pkgs=(erlang-nox elixir dnsmasq-base iproute2 debootstrap make procps
  containerd runc containernetworking-plugins iptables conntrack openssl util-linux nftables
  podman netavark aardvark-dns docker-compose)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    echo "note: add /usr/local/go/bin to PATH"
  else
    echo "error: Go 1.26 is required (install it to /usr/local/go)" >&2
    exit 1
  fi
fi
