#!/usr/bin/env bash
# Builds (or reuses) the binaries of the single-node Kubernetes the e2e suite
# runs on, from source at pinned versions, through the Go module proxy only:
#   kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy
#   kubectl (Kubernetes $K8S_VERSION), etcd ($ETCD_VERSION),
#   coredns ($COREDNS_VERSION), pause (a static sleeper that reaps children,
#   imported by scripts/k8s-images.sh as containerd's sandbox image).
# The binaries are cached outside the repository in
# $GONODE_K8S_CACHE/<versions>/bin (default /var/cache/gonode/k8s) and rebuilt
# only when a version changes. A cold build takes 17-20 minutes on 2 cores
# (the five Kubernetes binaries dominate); a cached one, no time. Prints the
# bin directory on stdout; progress goes to stderr.
#
# It starts no daemon and changes nothing outside the cache directory and Go's
# module and build caches.
set -euo pipefail

K8S_VERSION=v1.37.2
STAGING_VERSION=v0.37.2 # the k8s.io/<staging> modules are tagged v0.<minor>.<patch>
ETCD_VERSION=v3.6.17
COREDNS_VERSION=v1.15.0

cache=${GONODE_K8S_CACHE:-/var/cache/gonode/k8s}
dir=$cache/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-coredns-$COREDNS_VERSION
bin=$dir/bin
all=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd coredns pause)

ready() {
  [ -f "$bin/.gonode-ready" ] || return 1
  for b in "${all[@]}"; do [ -x "$bin/$b" ] || return 1; done
}
if ready; then
  echo "$bin"
  exit 0
fi

export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "error: Go 1.26 is required (/usr/local/go)" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
src=$dir/src
mkdir -p "$src" "$bin.tmp"
started=$(date +%s)
say() { echo "k8s-build: $* ($(($(date +%s) - started)) s)" >&2; }

# Kubernetes. k8s.io/kubernetes requires its staging modules at v0.0.0 and
# replaces them with ./staging, which only its own tree has: a scratch module
# requires it, copies its require list with the staging modules at their
# published versions, and replaces every staging module with that version
# (a dependency's replace lines do not apply to the main module).
build_kubernetes() {
  local m=$src/kubernetes
  local need=0
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    [ -x "$bin.tmp/$b" ] || need=1
  done
  [ $need = 1 ] || return 0
  mkdir -p "$m"
  local info
  info=$(cd "$m" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION")
  local gomod infofile
  gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' <<<"$info")
  infofile=$(sed -n 's/^[[:space:]]*"Info": "\(.*\)",$/\1/p' <<<"$info")
  {
    echo "module gonode.local/k8sbuild"
    echo
    echo "go 1.26.0"
    echo
    echo "godebug default=go1.26"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    awk -v sv="$STAGING_VERSION" '
      /^replace/ { exit }
      /^require \(/ { inreq = 1; print; next }
      inreq && /^\)/ { inreq = 0; print; print ""; next }
      inreq && $1 ~ /^k8s\.io\// && $2 == "v0.0.0" { sub(/v0\.0\.0/, sv) }
      inreq { print }
    ' "$gomod"
    echo "replace ("
    awk -v sv="$STAGING_VERSION" '
      /^replace/ { exit }
      $1 ~ /^k8s\.io\// && $2 == "v0.0.0" { printf "\t%s => %s %s\n", $1, $1, sv }
    ' "$gomod"
    echo ")"
  } >"$m/go.mod"
  # buildDate: the release's own time, so that a rebuild is the same binary.
  local when
  when=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$infofile")
  local major minor
  major=${K8S_VERSION#v}; major=${major%%.*}
  minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=$when"
  done
  say "building Kubernetes $K8S_VERSION (about 14 minutes cold)"
  (cd "$m" && go build -trimpath -ldflags "$ld" -o "$bin.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl)
  say "Kubernetes built"
}

build_etcd() {
  [ -x "$bin.tmp/etcd" ] && return 0
  local m=$src/etcd
  mkdir -p "$m"
  cat >"$m/go.mod" <<EOF
module gonode.local/etcdbuild

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
  cat >"$m/main.go" <<'EOF'
// Command etcd runs etcd's own server main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  say "building etcd $ETCD_VERSION"
  (cd "$m" && go build -trimpath -ldflags "-s -w" -o "$bin.tmp/etcd" .)
}

build_coredns() {
  [ -x "$bin.tmp/coredns" ] && return 0
  local m=$src/coredns
  mkdir -p "$m"
  cat >"$m/go.mod" <<EOF
module gonode.local/corednsbuild

go 1.26.0

require github.com/coredns/coredns $COREDNS_VERSION
EOF
  # Only the plugins the cluster's Corefile uses (scripts/k8s-up.sh).
  cat >"$m/main.go" <<'EOF'
// Command coredns runs CoreDNS with the plugins the test cluster uses.
package main

import (
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/whoami"

	"github.com/coredns/coredns/coremain"
)

func main() { coremain.Run() }
EOF
  say "building CoreDNS $COREDNS_VERSION"
  (cd "$m" && go build -trimpath -ldflags "-s -w" -o "$bin.tmp/coredns" .)
}

# pause: the pod sandbox's process. It sleeps until SIGTERM/SIGINT and reaps
# the zombies it inherits as the pod's init when the PID namespace is shared.
build_pause() {
  [ -x "$bin.tmp/pause" ] && return 0
  local m=$src/pause
  mkdir -p "$m"
  cat >"$m/go.mod" <<'EOF'
module gonode.local/pause

go 1.26.0
EOF
  cat >"$m/main.go" <<'EOF'
// Command pause holds a pod's namespaces open until it is told to stop.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
EOF
  (cd "$m" && go build -trimpath -ldflags "-s -w" -o "$bin.tmp/pause" .)
}

build_pause
build_etcd
build_coredns
build_kubernetes
for b in "${all[@]}"; do [ -x "$bin.tmp/$b" ] || { echo "error: $b was not built" >&2; exit 1; }; done
touch "$bin.tmp/.gonode-ready"
rm -rf "$bin"
mv "$bin.tmp" "$bin"
say "done: $bin"
echo "$bin"
