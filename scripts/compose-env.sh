# Sourced by scripts/compose-*.sh and test/compose: where the compose test's
# podman keeps its state, and the environment that points podman,
# docker-compose and `docker build` at it. Nothing of the machine's own
# container configuration (/etc/containers, /var/lib/containers) is read or
# written: podman reads only the configuration written here.
#
#   GONODE_COMPOSE_CACHE  images, layers, the root filesystem (kept between runs)
#   COMPOSE_STATE         the podman service's socket, pid and run state (/run)
#
# The podman service runs in a network namespace of its own (COMPOSE_NETNS:
# the bridge, the iptables rules netavark writes and leaves, ip_forward, the
# published ports all live there) and a mount namespace of its own
# ($COMPOSE_STATE/mnt, a slave of the machine's, where directories of ours
# are bound over the paths podman uses whatever it is configured with).
# Every podman command goes through the service (podman --remote), never
# running containers or networks in the machine's namespaces.
COMPOSE_CACHE=${GONODE_COMPOSE_CACHE:-/var/cache/gonode/compose}
COMPOSE_STATE=${GONODE_COMPOSE_STATE:-/run/gonode-compose}
COMPOSE_NETNS=${GONODE_COMPOSE_NETNS:-gonode-compose}
# Paths netavark and podman use whatever the configuration says (netavark's
# run directory, network namespaces, the image library's blob cache).
COMPOSE_OVERLAID=(/run/containers /run/netns /var/lib/containers)
export CONTAINERS_CONF=$COMPOSE_STATE/containers.conf
export CONTAINERS_STORAGE_CONF=$COMPOSE_STATE/storage.conf
# podman's registries.conf and policy.json are the package's (/etc/containers):
# nothing is pulled, every image is built or loaded locally.
export DOCKER_HOST=unix://$COMPOSE_STATE/podman.sock
export CONTAINER_HOST=$DOCKER_HOST
# podman's Docker API has no BuildKit; docker-compose 1.29 then builds
# through the classic /build endpoint.
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-gonode}
# The compose network's subnet (docker-compose.yml's default is the same):
# 198.18.0.0/15 is reserved for benchmarking, so it collides with no real
# network of the machine.
export GONODE_COMPOSE_SUBNET=${GONODE_COMPOSE_SUBNET:-198.18.42.0/24}

# compose_config writes podman's configuration into $COMPOSE_STATE, with the
# settings this machine needs (measured, see issue 22 and docs in README):
# runc (crun refuses a host with hybrid cgroups), cgroupfs (no systemd), the
# file events logger (no journald), default ulimits root can grant here, and
# images, containers and network definitions under $COMPOSE_CACHE.
compose_config() {
  mkdir -p "$COMPOSE_STATE" "$COMPOSE_CACHE/storage" "$COMPOSE_CACHE/networks"
  cat >"$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$COMPOSE_STATE/events.log"
tmp_dir = "$COMPOSE_STATE/libpod"
volume_path = "$COMPOSE_CACHE/storage/volumes"

[network]
network_backend = "netavark"
network_config_dir = "$COMPOSE_CACHE/networks"
default_subnet = "198.18.40.0/24"
default_subnet_pools = [{"base" = "198.18.41.0/24", "size" = 24}]
CONF
  cat >"$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "overlay"
runroot = "$COMPOSE_STATE/storage"
graphroot = "$COMPOSE_CACHE/storage"
CONF
}

# compose_in CMD...: runs CMD in the service's network and mount namespaces
# (what reaches the published ports, e.g. Prometheus on 127.0.0.1:9090).
compose_in() {
  nsenter --net="/run/netns/$COMPOSE_NETNS" --mount="$COMPOSE_STATE/mnt" --wd="$PWD" -- "$@"
}

# podman: always the service's (its state and namespaces).
podman() {
  command podman --remote "$@"
}
