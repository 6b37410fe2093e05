# Sourced by scripts/k8s-*.sh: where the test cluster lives and how to run a
# command inside it. Not a command of its own.
#
# The cluster runs inside a network namespace of its own (K8S_NETNS) and a
# mount namespace of its own (K8S_STATE/mnt, a slave of the machine's, so the
# machine's mounts show inside and the cluster's mounts never show outside).
# Its node address is 198.18.0.1 on an interface of that namespace; pods
# get 198.18.1.0/24 on the bridge cni0 there; Services 198.19.0.0/24.
# Every daemon and every container runs in the cgroup K8S_CGROUP (kubelet's
# cgroupRoot), so scripts/k8s-down.sh stops exactly what the cluster started.

K8S_NETNS=${GONODE_K8S_NETNS:-gonode-k8s}
K8S_STATE=${GONODE_K8S_STATE:-/run/gonode-k8s}      # sockets, pids, the mount namespace
K8S_DATA=${GONODE_K8S_DATA:-/var/lib/gonode-k8s}    # etcd, containerd, kubelet, certificates, logs
K8S_CGROUP=gonode-k8s
K8S_NODE_IP=198.18.0.1
K8S_POD_CIDR=198.18.1.0/24
K8S_POD_GATEWAY=198.18.1.1
# Pods get addresses from a range of 10 only: host-local hands them out in
# turn and wraps around, so a new pod soon gets the address of a pod that is
# gone, as on a busy node (test/e2e checks that the mesh copes). The e2e
# suite never runs more than 8 pods at once, terminating ones included.
K8S_POD_RANGE_START=198.18.1.10
K8S_POD_RANGE_END=198.18.1.19
K8S_SERVICE_CIDR=198.19.0.0/24
K8S_NODE_NAME=gonode-k8s
K8S_KUBECONFIG=$K8S_DATA/pki/admin.kubeconfig
# The global sysctls kubelet sets to its own defaults; k8s-up.sh saves them and
# k8s-down.sh puts them back.
K8S_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Paths containerd, runc, CNI and kubelet use whatever they are configured
# with: k8s-up.sh binds directories of its own over them inside the cluster's
# mount namespace, creating the mount point first when the machine has none
# (and k8s-down.sh removes the ones it created).
K8S_OVERLAID=(/var/lib/cni /var/log/pods /var/log/containers /run/containerd)

# k8s_in CMD...: runs CMD in the cluster's network and mount namespaces.
k8s_in() {
  nsenter --net="/run/netns/$K8S_NETNS" --mount="$K8S_STATE/mnt" --wd="$PWD" -- "$@"
}

# k8s_kubectl ARGS...: kubectl as the cluster's admin.
k8s_kubectl() {
  k8s_in "$K8S_BIN/kubectl" --kubeconfig "$K8S_KUBECONFIG" "$@"
}

# k8s_cgroup_dirs: the cluster's cgroup in every hierarchy mounted here.
k8s_cgroup_dirs() {
  local d
  for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -f "$d/cgroup.procs" ] || continue
    [ "$d" = /sys/fs/cgroup/ ] && [ -d /sys/fs/cgroup/unified ] && continue
    echo "${d%/}/$K8S_CGROUP"
  done
}

# k8s_track_dir: the hierarchy whose cgroup.procs files list every process of
# the cluster (pids on a v1/hybrid machine, the unified one on v2).
k8s_track_dir() {
  if [ -d /sys/fs/cgroup/pids ] && [ -f /sys/fs/cgroup/pids/cgroup.procs ]; then
    echo "/sys/fs/cgroup/pids/$K8S_CGROUP"
  else
    echo "/sys/fs/cgroup/$K8S_CGROUP"
  fi
}

# K8S_BIN: the binaries the running cluster was started with.
if [ -z "${K8S_BIN:-}" ] && [ -f "$K8S_STATE/bin" ]; then
  K8S_BIN=$(cat "$K8S_STATE/bin")
fi

# k8s_start NAME CMD...: runs CMD in the cluster's namespaces and cgroup,
# logging to K8S_DATA/logs/NAME.log; its pid goes to K8S_STATE/pids/NAME.
k8s_start() {
  local name=$1
  shift
  setsid bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$(k8s_track_dir)/system" \
    nsenter --net="/run/netns/$K8S_NETNS" --mount="$K8S_STATE/mnt" -- "$@" \
    >>"$K8S_DATA/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$K8S_STATE/pids/$name"
}

# k8s_stop NAME: stops the process k8s_start NAME started (SIGTERM, then
# SIGKILL after 10 s), if it still runs.
k8s_stop() {
  local f=$K8S_STATE/pids/$1 pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
