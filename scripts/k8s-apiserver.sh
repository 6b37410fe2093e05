#!/usr/bin/env bash
# Stops or starts the test cluster's kube-apiserver (scripts/k8s-up.sh starts
# it), for the e2e suite's API outage:
#   k8s-apiserver.sh stop | start
# stop saves the running server's command line; start runs it again and waits
# for /readyz. Pods, kubelet and CoreDNS go on running meanwhile.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=k8s-env.sh
. "$here/k8s-env.sh"
[ -f "$K8S_STATE/bin" ] || { echo "error: the cluster is not up (scripts/k8s-up.sh)" >&2; exit 1; }
saved=$K8S_STATE/kube-apiserver.cmdline

case ${1:-} in
stop)
  pid=$(cat "$K8S_STATE/pids/kube-apiserver")
  # k8s_start's nsenter execs the server: its command line is the server's.
  cp "/proc/$pid/cmdline" "$saved"
  k8s_stop kube-apiserver
  ;;
start)
  [ -f "$saved" ] || { echo "error: no saved kube-apiserver command line (run stop first)" >&2; exit 1; }
  mapfile -d '' args <"$saved"
  k8s_start kube-apiserver "${args[@]}"
  for ((i = 0; i < 120; i++)); do
    if k8s_kubectl get --raw /readyz >/dev/null 2>&1; then
      rm -f "$saved"
      exit 0
    fi
    sleep 0.5
  done
  echo "error: kube-apiserver not ready after 60 s (log: $K8S_DATA/logs/kube-apiserver.log)" >&2
  exit 1
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
