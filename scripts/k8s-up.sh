#!/usr/bin/env bash
# Starts the single-node Kubernetes the e2e suite runs on (and that a person
# can look around in): etcd, kube-apiserver with a CA of its own,
# kube-controller-manager, kube-scheduler, containerd, kubelet, kube-proxy and
# CoreDNS, from the binaries of scripts/k8s-build.sh, inside a network and a
# mount namespace of their own (scripts/k8s-env.sh says where everything is).
# Waits until the node is Ready and CoreDNS answers, then prints how to reach
# it. scripts/k8s-down.sh stops it and leaves the machine as it was found.
#
# What it changes outside its namespaces, and k8s-down.sh puts back: the
# global sysctls kubelet sets (K8S_SYSCTLS), the cgroup K8S_CGROUP in every
# hierarchy, the mount points of K8S_OVERLAID it had to create, the network
# namespace K8S_NETNS, K8S_STATE and K8S_DATA. It installs the Debian packages
# it needs (containerd, runc, containernetworking-plugins, iptables,
# conntrack, openssl). Everything it starts runs in the cgroup K8S_CGROUP.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=k8s-env.sh
. "$here/k8s-env.sh"

[ "$(id -u)" = 0 ] || { echo "error: k8s-up.sh needs root" >&2; exit 1; }
if [ -e "$K8S_STATE/mnt" ] || ip netns list | grep -qx "$K8S_NETNS\( .*\)\?"; then
  echo "error: a cluster is already up ($K8S_STATE, netns $K8S_NETNS); run scripts/k8s-down.sh first" >&2
  exit 1
fi

pkgs=(containerd runc containernetworking-plugins iptables conntrack openssl iproute2 util-linux debootstrap nftables)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

K8S_BIN=$("$here/k8s-build.sh")
started=$(date +%s)
say() { echo "k8s-up: $* ($(($(date +%s) - started)) s)" >&2; }

# From here on a failure undoes what was done.
trap 'echo "k8s-up: failed; stopping what was started" >&2; "$here/k8s-down.sh" >&2 || true' ERR

mkdir -p "$K8S_STATE/pids" "$K8S_DATA"/{pki,logs,etcd,containerd,kubelet,cni/net.d,cni/ipam,overlaid}
echo "$K8S_BIN" >"$K8S_STATE/bin"

# Host state, saved first so that k8s-down.sh can always put it back.
: >"$K8S_STATE/sysctls"
for s in "${K8S_SYSCTLS[@]}"; do
  v=$(sysctl -n "$s" 2>/dev/null) || continue
  echo "$s=$v" >>"$K8S_STATE/sysctls"
done
: >"$K8S_STATE/created"
for p in "${K8S_OVERLAID[@]}"; do
  if [ ! -e "$p" ]; then
    mkdir -p "$p"
    echo "$p" >>"$K8S_STATE/created"
  fi
done
for d in $(k8s_cgroup_dirs); do mkdir -p "$d"; done
mkdir -p "$(k8s_track_dir)/system"
# cpuset cgroups start with no CPUs or memory nodes: inherit the parent's.
if [ -d /sys/fs/cgroup/cpuset/$K8S_CGROUP ]; then
  c=/sys/fs/cgroup/cpuset/$K8S_CGROUP
  cat /sys/fs/cgroup/cpuset/cpuset.cpus >"$c/cpuset.cpus"
  cat /sys/fs/cgroup/cpuset/cpuset.mems >"$c/cpuset.mems"
fi

# The network: a namespace whose node address sits on one end of a veth pair
# whose both ends stay in it (a dummy interface would do, but not every
# kernel has the dummy driver).
ip netns add "$K8S_NETNS"
ip -n "$K8S_NETNS" link set lo up
ip -n "$K8S_NETNS" link add node0 type veth peer name node0-peer
ip -n "$K8S_NETNS" addr add "$K8S_NODE_IP/24" dev node0
ip -n "$K8S_NETNS" link set node0-peer up
ip -n "$K8S_NETNS" link set node0 up
ip -n "$K8S_NETNS" route add default dev node0
ip netns exec "$K8S_NETNS" sysctl -qw net.ipv4.ip_forward=1

# The mount namespace, kept alive by a bind mount of its nsfs file.
mount --bind "$K8S_STATE" "$K8S_STATE"
mount --make-private "$K8S_STATE"
touch "$K8S_STATE/mnt"
unshare --mount="$K8S_STATE/mnt" --propagation slave true
for p in "${K8S_OVERLAID[@]}"; do
  o=$K8S_DATA/overlaid/$(echo "$p" | tr / _)
  mkdir -p "$o"
  k8s_in mount --bind "$o" "$p"
done

# wait_for WHAT SECONDS CMD...: polls CMD once a second.
wait_for() {
  local what=$1 limit=$2 i
  shift 2
  for ((i = 0; i < limit; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "k8s-up: $what not ready after $limit s; logs in $K8S_DATA/logs" >&2
  return 1
}

# --- Certificates: a CA of the cluster's own and one key pair per user. ---
pki=$K8S_DATA/pki
openssl_quiet() { openssl "$@" 2>/dev/null; }
openssl_quiet req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=gonode-k8s-ca" -keyout "$pki/ca.key" -out "$pki/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
# cert NAME SUBJECT [SAN]: issues NAME.crt/NAME.key for SUBJECT, signed by the CA.
cert() {
  local name=$1 subj=$2 san=${3:-}
  local ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth"
  [ -n "$san" ] && ext="$ext
subjectAltName=$san"
  openssl_quiet req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "$subj" -keyout "$pki/$name.key" -out "$pki/$name.csr"
  openssl_quiet x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 30 -out "$pki/$name.crt" -extfile <(echo "$ext")
  rm -f "$pki/$name.csr"
}
svc_ip=${K8S_SERVICE_CIDR%.*}.1
cert apiserver "/CN=kube-apiserver" \
  "IP:$K8S_NODE_IP,IP:$svc_ip,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
cert admin "/O=system:masters/CN=kubernetes-admin"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kubelet "/O=system:nodes/CN=system:node:$K8S_NODE_NAME" "IP:$K8S_NODE_IP,DNS:$K8S_NODE_NAME"
cert kube-proxy "/CN=system:kube-proxy"
cert coredns "/CN=gonode-k8s:coredns"
openssl_quiet genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key"
openssl_quiet pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

# kubeconfig USER: a kubeconfig for USER's certificate.
kubeconfig() {
  cat >"$pki/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: gonode-k8s
  cluster: {server: "https://$K8S_NODE_IP:6443", certificate-authority: "$pki/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$pki/$1.crt", client-key: "$pki/$1.key"}
contexts:
- name: gonode-k8s
  context: {cluster: gonode-k8s, user: $1}
current-context: gonode-k8s
EOF
}
for u in admin controller-manager scheduler kubelet kube-proxy coredns; do kubeconfig "$u"; done

# --- etcd and the control plane. ---
say "starting etcd"
k8s_start etcd "$K8S_BIN/etcd" --name default --data-dir "$K8S_DATA/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster default=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
  --log-level warn
wait_for etcd 30 k8s_in bash -c 'exec 3<>/dev/tcp/127.0.0.1/2379'

say "starting kube-apiserver"
k8s_start kube-apiserver "$K8S_BIN/kube-apiserver" \
  --advertise-address="$K8S_NODE_IP" --bind-address="$K8S_NODE_IP" --secure-port=6443 \
  --etcd-servers=http://127.0.0.1:2379 \
  --client-ca-file="$pki/ca.crt" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
  --service-cluster-ip-range="$K8S_SERVICE_CIDR" --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NodeRestriction --allow-privileged=true \
  --kubelet-preferred-address-types=InternalIP \
  --feature-gates=AtomicWriteVolumeUserFields=true
wait_for kube-apiserver 120 k8s_kubectl get --raw /readyz

say "starting kube-controller-manager and kube-scheduler"
k8s_start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig="$pki/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$pki/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$pki/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --allocate-node-cidrs=false --service-cluster-ip-range="$K8S_SERVICE_CIDR"
k8s_start kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig="$pki/scheduler.kubeconfig" \
  --authentication-kubeconfig="$pki/scheduler.kubeconfig" --authorization-kubeconfig="$pki/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false

# --- containerd and kubelet. ---
cat >"$K8S_DATA/containerd.toml" <<EOF
version = 2
root = "$K8S_DATA/containerd"
state = "$K8S_STATE/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$K8S_STATE/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.1"
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$K8S_DATA/cni/net.d"
EOF
cat >"$K8S_DATA/cni/net.d/10-gonode-k8s.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "gonode-k8s",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$K8S_DATA/cni/ipam",
              "ranges": [[{"subnet": "$K8S_POD_CIDR", "gateway": "$K8S_POD_GATEWAY",
                           "rangeStart": "$K8S_POD_RANGE_START", "rangeEnd": "$K8S_POD_RANGE_END"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
say "starting containerd"
k8s_start containerd /usr/bin/containerd --config "$K8S_DATA/containerd.toml"
wait_for containerd 30 test -S "$K8S_STATE/containerd.sock"
"$here/k8s-images.sh" pause >&2

cat >"$K8S_DATA/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
featureGates: {AtomicWriteVolumeUserFields: true}
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$K8S_CGROUP
makeIPTablesUtilChains: false
failSwapOn: false
evictionHard: {}
clusterDNS: ["$K8S_NODE_IP"]
clusterDomain: cluster.local
resolvConf: ""
address: "$K8S_NODE_IP"
healthzBindAddress: 127.0.0.1
tlsCertFile: "$pki/kubelet.crt"
tlsPrivateKeyFile: "$pki/kubelet.key"
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
containerRuntimeEndpoint: "unix://$K8S_STATE/containerd.sock"
imageGCHighThresholdPercent: 100
EOF
say "starting kubelet"
k8s_start kubelet "$K8S_BIN/kubelet" --config="$K8S_DATA/kubelet.yaml" \
  --kubeconfig="$pki/kubelet.kubeconfig" --root-dir="$K8S_DATA/kubelet" \
  --hostname-override="$K8S_NODE_NAME" --node-ip="$K8S_NODE_IP"

cat >"$K8S_DATA/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$pki/kube-proxy.kubeconfig"}
hostnameOverride: $K8S_NODE_NAME
mode: iptables
clusterCIDR: $K8S_POD_CIDR
bindAddress: $K8S_NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$K8S_NODE_IP/32"]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
say "starting kube-proxy"
k8s_start kube-proxy "$K8S_BIN/kube-proxy" --config="$K8S_DATA/kube-proxy.yaml"

# --- CoreDNS, after the RBAC it reads the cluster with. ---
k8s_kubectl apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "gonode-k8s:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "gonode-k8s:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "gonode-k8s:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "gonode-k8s:coredns"}
EOF
"$here/k8s-dns.sh" start

wait_for "node Ready" 120 k8s_kubectl wait --for=condition=Ready "node/$K8S_NODE_NAME" --timeout=1s
wait_for "default ServiceAccount" 60 k8s_kubectl get serviceaccount default
trap - ERR
say "cluster up"
cat <<EOF
The cluster is up (node $K8S_NODE_NAME, $K8S_NODE_IP; logs in $K8S_DATA/logs).
kubectl:  scripts/k8s-kubectl.sh get pods -A
stop:     scripts/k8s-down.sh
EOF
