#!/usr/bin/env bash
# Stops what scripts/compose-up.sh started and puts the machine back as it
# was: the compose project's containers and networks (docker-compose down),
# the podman service, every process left in the service's network namespace
# (conmon, aardvark-dns), the namespaces (with them the bridge, the iptables
# rules netavark leaves behind and ip_forward) and the mount points it had to
# create. Images and layers stay in $GONODE_COMPOSE_CACHE for the next run.
# Safe to run when nothing is up.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=compose-env.sh
. "$here/compose-env.sh"

pidfile=$COMPOSE_STATE/podman.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  docker-compose -f "$repo/docker-compose.yml" --project-directory "$repo" down --volumes --timeout 10 >&2 || true
  # Whatever else the service runs (a test's leftovers): containers, then
  # the networks but podman's default one.
  podman rm --all --force --time 10 >/dev/null 2>&1 || true
  podman network prune --force >/dev/null 2>&1 || true
  kill "$(cat "$pidfile")" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$(cat "$pidfile")" 2>/dev/null || true
fi
rm -f "$pidfile"

if ip netns list | grep -q "^$COMPOSE_NETNS\( \|$\)"; then
  # Processes in the namespace are the service's children (conmon,
  # aardvark-dns, containers): nothing else runs there.
  pids=$(ip netns pids "$COMPOSE_NETNS")
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill $pids 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(ip netns pids "$COMPOSE_NETNS")" ] && break; sleep 0.2; done
    pids=$(ip netns pids "$COMPOSE_NETNS")
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
  fi
fi
if [ -e "$COMPOSE_STATE/mnt" ]; then
  umount "$COMPOSE_STATE/mnt" 2>/dev/null || true
fi
if ip netns list | grep -q "^$COMPOSE_NETNS\( \|$\)"; then
  ip netns del "$COMPOSE_NETNS"
fi
if [ -f "$COMPOSE_STATE/created" ]; then
  while IFS= read -r p; do
    [ -n "$p" ] && rmdir "$p" 2>/dev/null || true
  done <"$COMPOSE_STATE/created"
fi
if mountpoint -q "$COMPOSE_STATE" 2>/dev/null; then
  umount "$COMPOSE_STATE"
fi
rm -rf "$COMPOSE_STATE"
