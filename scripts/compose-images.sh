#!/usr/bin/env bash
# Builds, without a registry, the images docker-compose.yml and the
# Dockerfile start from, and loads them into the compose test's podman
# (scripts/compose-up.sh must have started it), each tagged with the public
# name a user's engine would pull, so that the Dockerfile and the compose file
# stay exactly what users build online:
#
#   docker.io/library/golang:1.26-bookworm  the Dockerfile's build stage: a
#       Debian bookworm root filesystem (debootstrap, minbase), the Go
#       toolchain of this machine in /usr/local/go and, in /go/pkg/mod, the
#       module cache of this checkout's go.mod (GOPROXY=off: the build stage
#       never reaches the network) and, in /root/.cache/go-build, the build
#       cache of the same build (what BuildKit's cache mounts would keep)
#   docker.io/prom/prometheus:v2.42.0       Debian bookworm's prometheus
#       package (2.42.0) on the same root filesystem, with the official
#       image's entrypoint, command, working directory and user
#   gonode-example:otp27                    the Mix release of examples/elixir
#       on OTP 27, built by scripts/k8s-images.sh (shared with the e2e suite)
#
# Layers are cached in $GONODE_COMPOSE_CACHE/images and rebuilt when their
# inputs change (the root filesystem, the Go release, go.sum, the .deb); an
# image already in podman's storage with the same content is not loaded again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=compose-env.sh
. "$here/compose-env.sh"
# shellcheck source=images-lib.sh
. "$here/images-lib.sh"
export PATH=$PATH:/usr/local/go/bin

out=$COMPOSE_CACHE/images
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# load ARCHIVE: into podman, unless the image it holds (its ID is the digest
# of its configuration) is there already.
load() {
  local id ref
  id=$(tar -xOf "$1" ./manifest.json | sed -n 's/.*"Config":"\([0-9a-f]*\)\.json".*/\1/p')
  ref=$(tar -xOf "$1" ./manifest.json | sed -n 's/.*"RepoTags":\["\([^"]*\)"\].*/\1/p')
  if [ "$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null)" != "$id" ]; then
    podman load -q -i "$1" >&2
  fi
  echo "$ref"
}

# fresh TARGET INPUT...: whether TARGET exists and is newer than every INPUT.
fresh() {
  local t=$1 i
  shift
  [ -e "$t" ] || return 1
  for i in "$@"; do [ "$i" -nt "$t" ] && return 1; done
  return 0
}

# The bookworm root filesystem, and its layer.
rootfs=$COMPOSE_CACHE/rootfs/bookworm-slim
if [ ! -f "$rootfs/.gonode-ready" ]; then
  rm -rf "$rootfs.tmp"
  mkdir -p "$COMPOSE_CACHE/rootfs"
  echo "building the bookworm root filesystem (about a minute)" >&2
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs.tmp" >&2
  rm -rf "$rootfs.tmp"/var/cache/apt/archives/*.deb "$rootfs.tmp"/var/lib/apt/lists/*_Packages
  touch "$rootfs.tmp/.gonode-ready"
  rm -rf "$rootfs"
  mv "$rootfs.tmp" "$rootfs"
fi
base=$out/base-bookworm.tar
if ! fresh "$base" "$rootfs/.gonode-ready"; then
  layer "$rootfs" "$base.tmp"
  mv "$base.tmp" "$base"
fi

# The Go toolchain and the module cache.
goroot=$(go env GOROOT)
gover=$(go env GOVERSION)
gominor=$(echo "${gover#go}" | cut -d. -f1,2)
golayer=$out/go-$gover.tar
stamp=$( (echo "$gover"; sha256sum "$repo/go.sum" "$0") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$golayer.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -f "$golayer" ]; then
  r=$work/go-root
  mkdir -p "$r/usr/local" "$r/go/pkg" "$r/go/bin"
  cp -a "$goroot" "$r/usr/local/go"
  # The module cache the Dockerfile's `go mod download` would fill, filled
  # here from this machine's module cache (then the module proxy).
  (cd "$repo" && GOFLAGS=-modcacherw GOMODCACHE="$r/go/pkg/mod" \
    GOPROXY="file://$(go env GOMODCACHE)/cache/download,$(go env GOPROXY)" go mod download)
  # And the build cache of the same build with the Dockerfile's flags, so
  # that the build stage compiles only what changed since go.sum did (with
  # -trimpath the cache keys name no directory: the host's build hits).
  mkdir -p "$r/root/.cache"
  (cd "$repo" && CGO_ENABLED=0 GOFLAGS=-modcacherw GOMODCACHE="$r/go/pkg/mod" GOPROXY=off \
    GOCACHE="$r/root/.cache/go-build" go build -trimpath -ldflags "-s -w" -o /dev/null ./cmd/gonode)
  chown -R 0:0 "$r"
  layer "$r" "$golayer.tmp"
  mv "$golayer.tmp" "$golayer"
  echo "$stamp" >"$golayer.stamp"
fi
goref=docker.io/library/golang:$gominor-bookworm
if ! fresh "$out/golang.tar" "$base" "$golayer" "$here/images-lib.sh"; then
  pack "$goref" "$out/golang.tar" \
    "{\"Env\":[\"PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"GOLANG_VERSION=${gover#go}\",\"GOTOOLCHAIN=local\",\"GOPATH=/go\",\"GOPROXY=off\"],\"Cmd\":[\"bash\"],\"WorkingDir\":\"/go\"}" \
    "$base" "$golayer"
fi
load "$out/golang.tar"

# Prometheus: the files of Debian's package (its dependencies beyond libc
# are the web console's JavaScript, which the image does without).
debs=$COMPOSE_CACHE/debs
mkdir -p "$debs"
deb=$(ls "$debs"/prometheus_*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
  (cd "$debs" && { apt-get -o APT::Sandbox::User=root download prometheus >&2 || { apt-get update >&2 && apt-get -o APT::Sandbox::User=root download prometheus >&2; }; })
  deb=$(ls "$debs"/prometheus_*.deb | head -1)
fi
promver=$(dpkg-deb -f "$deb" Version | sed 's/+.*//')
promlayer=$out/prometheus-$promver.tar
if ! fresh "$promlayer" "$deb" "$0"; then
  r=$work/prom-root
  mkdir -p "$r"
  dpkg-deb -x "$deb" "$r"
  # The root filesystem has merged /usr (/lib is a link to usr/lib): a
  # directory /lib in a layer above would hide the link, and libc with it.
  for d in bin sbin lib lib64; do
    if [ -d "$r/$d" ] && [ ! -L "$r/$d" ]; then
      mkdir -p "$r/usr/$d"
      cp -a "$r/$d/." "$r/usr/$d/"
      rm -rf "${r:?}/$d"
    fi
  done
  mkdir -p "$r/prometheus" "$r/etc/prometheus"
  chown -R 0:0 "$r"
  chown 65534:65534 "$r/prometheus"
  layer "$r" "$promlayer.tmp"
  mv "$promlayer.tmp" "$promlayer"
fi
promref=docker.io/prom/prometheus:v$promver
if ! fresh "$out/prometheus.tar" "$base" "$promlayer" "$here/images-lib.sh"; then
  pack "$promref" "$out/prometheus.tar" \
    '{"Entrypoint":["/bin/prometheus"],"Cmd":["--config.file=/etc/prometheus/prometheus.yml","--storage.tsdb.path=/prometheus"],"User":"65534","WorkingDir":"/prometheus","ExposedPorts":{"9090/tcp":{}}}' \
    "$base" "$promlayer"
fi
load "$out/prometheus.tar"

# The example Elixir application, as the e2e suite builds it (the archive is
# shared with it). k8s-images.sh also imports it into the e2e cluster when
# one is up: pointed at a state directory with no cluster, it does not.
GONODE_K8S_STATE=$COMPOSE_STATE/no-k8s-cluster "$here/k8s-images.sh" elixir-otp27 >/dev/null
load "${GONODE_K8S_CACHE:-/var/cache/gonode/k8s}/images/elixir-otp27.tar"
