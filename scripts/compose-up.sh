#!/usr/bin/env bash
# Starts the podman API service the compose test drives docker-compose
# through (`podman system service` on $COMPOSE_STATE/podman.sock, no
# timeout), with the configuration and in the namespaces of
# scripts/compose-env.sh. Does nothing if the service is up already.
# scripts/compose-down.sh stops it and puts the machine back as it was.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=compose-env.sh
. "$here/compose-env.sh"
[ "$(id -u)" = 0 ] || { echo "error: compose-up.sh needs root" >&2; exit 1; }
pidfile=$COMPOSE_STATE/podman.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  exit 0
fi
if [ -e "$COMPOSE_STATE/mnt" ] || ip netns list | grep -q "^$COMPOSE_NETNS\( \|$\)"; then
  echo "compose-up: a previous run left its namespaces; stopping them first" >&2
  "$here/compose-down.sh"
fi
# From here on a failure undoes what was done.
trap 'echo "compose-up: failed; undoing" >&2; "$here/compose-down.sh" >&2 || true' ERR

mkdir -p "$COMPOSE_STATE"
compose_config
: >"$COMPOSE_STATE/created"
for p in "${COMPOSE_OVERLAID[@]}"; do
  if [ ! -e "$p" ]; then
    mkdir -p "$p"
    echo "$p" >>"$COMPOSE_STATE/created"
  fi
done

ip netns add "$COMPOSE_NETNS"
ip -n "$COMPOSE_NETNS" link set lo up

# The mount namespace, kept alive by a bind mount of its nsfs file.
mount --bind "$COMPOSE_STATE" "$COMPOSE_STATE"
mount --make-private "$COMPOSE_STATE"
touch "$COMPOSE_STATE/mnt"
unshare --mount="$COMPOSE_STATE/mnt" --propagation slave true
for p in "${COMPOSE_OVERLAID[@]}"; do
  o=$COMPOSE_STATE/overlaid/$(echo "$p" | tr / _)
  mkdir -p "$o"
  compose_in mount --bind "$o" "$p"
done
rm -f "$COMPOSE_STATE/podman.sock"
setsid nsenter --net="/run/netns/$COMPOSE_NETNS" --mount="$COMPOSE_STATE/mnt" -- \
  env -u CONTAINER_HOST CONTAINERS_CONF="$CONTAINERS_CONF" CONTAINERS_STORAGE_CONF="$CONTAINERS_STORAGE_CONF" \
  podman system service --time=0 "$DOCKER_HOST" \
  </dev/null >>"$COMPOSE_STATE/podman.log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 150); do
  if [ -S "$COMPOSE_STATE/podman.sock" ] && podman version >/dev/null 2>&1; then
    exit 0
  fi
  kill -0 "$(cat "$pidfile")" 2>/dev/null || break
  sleep 0.2
done
echo "error: the podman service did not start; its log:" >&2
tail -20 "$COMPOSE_STATE/podman.log" >&2
false
