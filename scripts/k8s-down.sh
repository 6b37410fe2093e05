#!/usr/bin/env bash
# Stops the test cluster of scripts/k8s-up.sh and leaves the machine as it
# was before k8s-up.sh ran: every process of the cluster's cgroup (its daemons,
# containerd's shims and every container, nothing else) is stopped, the
# cgroups, the network namespace (with its bridge, routes and iptables rules),
# the mount namespace (with every mount the cluster made), the mount points
# k8s-up.sh created, K8S_STATE and K8S_DATA are removed, and the global
# sysctls kubelet changed get their saved values back. Safe to run twice, and
# after a k8s-up.sh that failed half-way.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=k8s-env.sh
. "$here/k8s-env.sh"
[ "$(id -u)" = 0 ] || { echo "error: k8s-down.sh needs root" >&2; exit 1; }

# procs: every process in the cluster's cgroup tree.
procs() {
  local d
  d=$(k8s_track_dir)
  [ -d "$d" ] || return 0
  find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u
}

# kubelet first, so that it does not restart containers being stopped.
for name in kubelet kube-proxy coredns kube-scheduler kube-controller-manager; do
  k8s_stop "$name"
done
for sig in TERM TERM TERM KILL KILL KILL; do
  p=$(procs)
  [ -z "$p" ] && break
  # shellcheck disable=SC2086
  kill -"$sig" $p 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    [ -z "$(procs)" ] && break
    sleep 0.1
  done
done
if [ -n "$(procs)" ]; then
  echo "k8s-down: processes still in the cluster's cgroup: $(procs | tr '\n' ' ')" >&2
fi
rm -rf "$K8S_STATE/pids"

# Cgroups, deepest first.
for d in $(k8s_cgroup_dirs); do
  [ -d "$d" ] || continue
  for ((i = 0; i < 50; i++)); do
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$d" ] || break
    sleep 0.1
  done
  [ -d "$d" ] && echo "k8s-down: could not remove cgroup $d" >&2
done

# Namespaces.
if [ -e "$K8S_STATE/mnt" ]; then
  umount "$K8S_STATE/mnt" 2>/dev/null || true
fi
if ip netns list | grep -q "^$K8S_NETNS\( \|$\)"; then
  ip netns del "$K8S_NETNS"
fi

# Host state saved by k8s-up.sh.
if [ -f "$K8S_STATE/sysctls" ]; then
  while IFS= read -r kv; do
    [ -n "$kv" ] && sysctl -qw "$kv" || true
  done <"$K8S_STATE/sysctls"
fi
if [ -f "$K8S_STATE/created" ]; then
  while IFS= read -r p; do
    [ -n "$p" ] && rmdir "$p" 2>/dev/null || true
  done <"$K8S_STATE/created"
fi

if mountpoint -q "$K8S_STATE" 2>/dev/null; then
  umount "$K8S_STATE"
fi
rm -rf "$K8S_STATE" "$K8S_DATA"
echo "k8s-down: stopped" >&2
