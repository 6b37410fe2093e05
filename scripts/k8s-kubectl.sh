#!/usr/bin/env bash
# kubectl against the test cluster of scripts/k8s-up.sh, as its admin, run
# inside the cluster's network namespace (the API server listens on the node
# address there). Example: scripts/k8s-kubectl.sh get pods -A -o wide
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=k8s-env.sh
. "$here/k8s-env.sh"
[ -f "$K8S_STATE/bin" ] || { echo "error: the cluster is not up (scripts/k8s-up.sh)" >&2; exit 1; }
k8s_kubectl "$@"
