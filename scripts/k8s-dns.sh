#!/usr/bin/env bash
# Starts or stops the test cluster's CoreDNS (scripts/k8s-up.sh starts it):
#   k8s-dns.sh start | stop
# CoreDNS runs on the node address, port 53, the address kubelet gives pods as
# their nameserver, and serves cluster.local from the cluster's Services and
# EndpointSlices. Stopping it is how the e2e suite makes a DNS outage.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=k8s-env.sh
. "$here/k8s-env.sh"
[ -f "$K8S_STATE/bin" ] || { echo "error: the cluster is not up (scripts/k8s-up.sh)" >&2; exit 1; }

case ${1:-} in
start)
  # ttl and cache of 5 s: answers follow pod changes within seconds, as a
  # cluster's CoreDNS with short caching does.
  cat >"$K8S_DATA/Corefile" <<COREFILE
.:53 {
    bind $K8S_NODE_IP
    errors
    health $K8S_NODE_IP:8080
    ready $K8S_NODE_IP:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $K8S_DATA/pki/coredns.kubeconfig
        pods insecure
        ttl 5
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
    loadbalance
}
COREFILE
  k8s_stop coredns
  k8s_start coredns "$K8S_BIN/coredns" -conf "$K8S_DATA/Corefile"
  for ((i = 0; i < 60; i++)); do
    if k8s_in bash -c "exec 3<>/dev/tcp/$K8S_NODE_IP/8181 && printf 'GET /ready HTTP/1.0\r\n\r\n' >&3 && grep -q '200 OK' <&3" 2>/dev/null; then
      exit 0
    fi
    sleep 1
  done
  echo "error: CoreDNS not ready after 60 s (log: $K8S_DATA/logs/coredns.log)" >&2
  exit 1
  ;;
stop)
  k8s_stop coredns
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
