#!/usr/bin/env bash
# Builds the container images of the e2e suite without a registry and imports
# them into the test cluster's containerd (when scripts/k8s-up.sh has it up):
#   k8s-images.sh [pause] [gonode] [elixir-otp25] [elixir-otp27] [elixir-otp29]
# (no argument: all but pause, which k8s-up.sh imports itself).
#
#   pause          registry.k8s.io/pause:3.10.1, the sandbox image containerd
#                  is configured with: the pause binary of scripts/k8s-build.sh
#   gonode         gonode:e2e: the static gonode binary of this checkout, an
#                  /etc/passwd with the user 65534, nothing else
#   elixir-otpNN   gonode-example:otpNN: a Debian root filesystem with OTP and
#                  Elixir (bookworm: OTP 25, debootstrapped here; trixie/sid:
#                  OTP 27/29, the chroots of scripts/otp-matrix.sh) and the
#                  Mix release of examples/elixir in /app
#
# Images are Docker archives (docker save's layout) in
# $GONODE_K8S_CACHE/images; root filesystem layers are cached there and
# rebuilt only when their chroot changes, the example's release only when its
# sources or its base change; the gonode binary is rebuilt every time. The images are imported with
# `ctr -n k8s.io images import`; pods use them with imagePullPolicy: Never.
# Prints "<name> <image reference>" per image on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=k8s-env.sh
. "$here/k8s-env.sh"
export PATH=$PATH:/usr/local/go/bin

cache=${GONODE_K8S_CACHE:-/var/cache/gonode/k8s}
out=$cache/images
mkdir -p "$out"

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(gonode elixir-otp25 elixir-otp27)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# layer, pack and minimal_root.
# shellcheck source=images-lib.sh
. "$here/images-lib.sh"

# import ARCHIVE: into the cluster's containerd, when the cluster is up.
import() {
  [ -S "$K8S_STATE/containerd.sock" ] || return 0
  k8s_in ctr --address "$K8S_STATE/containerd.sock" -n k8s.io images import \
    --snapshotter overlayfs "$1" >&2
}

build_pause() {
  [ -n "${K8S_BIN:-}" ] || K8S_BIN=$("$here/k8s-build.sh")
  local r=$work/pause-root
  minimal_root "$r"
  cp "$K8S_BIN/pause" "$r/pause"
  layer "$r" "$work/pause.tar"
  pack registry.k8s.io/pause:3.10.1 "$out/pause.tar" '{"Entrypoint":["/pause"],"User":"65534"}' "$work/pause.tar"
  import "$out/pause.tar"
  echo "pause registry.k8s.io/pause:3.10.1"
}

build_gonode() {
  local r=$work/gonode-root
  minimal_root "$r"
  (cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=e2e" \
    -o "$r/usr/local/bin/gonode" ./cmd/gonode)
  layer "$r" "$work/gonode.tar"
  pack gonode:e2e "$out/gonode.tar" \
    '{"Entrypoint":["/usr/local/bin/gonode"],"User":"65534","Env":["GONODE_DIST_PORT=9000","GONODE_LOG_FORMAT=json"],"ExposedPorts":{"4369/tcp":{},"9000/tcp":{},"9568/tcp":{}}}' \
    "$work/gonode.tar"
  import "$out/gonode.tar"
  echo "gonode gonode:e2e"
}

# otp_root LABEL: the root filesystem with OTP and Elixir for LABEL.
otp_root() {
  case $1 in
  otp25)
    local r=$cache/rootfs/bookworm
    if [ ! -f "$r/.gonode-ready" ]; then
      rm -rf "$r.tmp"
      mkdir -p "$cache/rootfs"
      echo "building the bookworm root filesystem (about two minutes)" >&2
      debootstrap --variant=minbase --include=erlang-nox,elixir bookworm "$r.tmp" >&2
      touch "$r.tmp/.gonode-ready"
      rm -rf "$r"
      mv "$r.tmp" "$r"
    fi
    echo "$r"
    ;;
  otp27 | otp29)
    "$here/otp-matrix.sh" | awk -v l="$1" '$1 == l { print $2 }'
    ;;
  *)
    echo "error: no OTP release $1" >&2
    return 1
    ;;
  esac
}

# build_elixir LABEL: the example application's release on LABEL's OTP.
build_elixir() {
  local label=$1 root base
  root=$(otp_root "$label")
  [ -n "$root" ] && [ -x "$root/usr/bin/elixir" ] || { echo "error: no root filesystem for $label" >&2; return 1; }
  # The base layer, cached while its root filesystem is unchanged.
  base=$out/base-$label.tar
  if [ ! -f "$base" ] || [ "$root/.gonode-ready" -nt "$base" ]; then
    layer "$root" "$base.tmp"
    mv "$base.tmp" "$base"
  fi
  local ref=gonode-example:$label archive=$out/elixir-$label.tar
  # Rebuilt only when the example's sources or the base layer changed.
  local stamp
  stamp=$( (cd "$repo/examples/elixir" && find . -path ./_build -prune -o -path ./deps -prune -o -type f -print0 |
    sort -z | xargs -0 sha256sum; sha256sum "$base") | sha256sum | cut -d' ' -f1)
  if [ -f "$archive" ] && [ "$(cat "$archive.stamp" 2>/dev/null)" = "$stamp" ]; then
    import "$archive"
    echo "elixir-$label $ref"
    return 0
  fi
  # The release, built by the image's own Mix and OTP in a private mount
  # namespace with the sources bound at the root's /mnt.
  local src=$work/src-$label
  mkdir -p "$src"
  cp -r "$repo/examples/elixir/." "$src/"
  rm -rf "$src/_build" "$src/deps"
  unshare -m --propagation private bash -c '
    set -e
    mount -t proc proc "$1/proc"
    mount --bind "$2" "$1/mnt"
    chroot "$1" /usr/bin/env -i HOME=/tmp MIX_HOME=/tmp/mix MIX_ENV=prod LANG=C.UTF-8 PATH=/usr/bin:/bin \
      sh -c "cd /mnt && mix release --overwrite --quiet"
  ' _ "$root" "$src" >&2
  local app=$work/app-$label
  mkdir -p "$app/app"
  cp -a "$src/_build/prod/rel/gonode_example/." "$app/app/"
  chown -R 0:0 "$app/app"
  layer "$app" "$work/app-$label.tar"
  pack "$ref" "$archive" \
    '{"Entrypoint":["/app/bin/gonode_example"],"Cmd":["start"],"User":"65534","WorkingDir":"/app","Env":["PATH=/usr/local/bin:/usr/bin:/bin","LANG=C.UTF-8","HOME=/tmp","RELEASE_TMP=/tmp"]}' \
    "$base" "$work/app-$label.tar"
  echo "$stamp" >"$archive.stamp"
  import "$archive"
  echo "elixir-$label $ref"
}

for n in "${names[@]}"; do
  case $n in
  pause) build_pause ;;
  gonode) build_gonode ;;
  elixir-otp*) build_elixir "${n#elixir-}" ;;
  *)
    echo "error: no image $n" >&2
    exit 2
    ;;
  esac
done
