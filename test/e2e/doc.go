//go:build e2e

// Package e2e runs gonode on a real single-node Kubernetes beside Elixir pods
// and checks what a user of deploy/kubernetes sees.
//
// TestMain starts the cluster with scripts/k8s-up.sh (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd, kubelet, kube-proxy and
// CoreDNS, built from source by scripts/k8s-build.sh, in a network and a
// mount namespace of their own), builds and imports the images with
// scripts/k8s-images.sh (gonode:e2e from this checkout; gonode-example:otp27
// and :otp25, the Mix release of examples/elixir on Debian's OTP 27 and 25),
// runs the tests and stops the cluster with scripts/k8s-down.sh. It records
// the machine's state the cluster may touch (network namespaces, the global
// sysctls kubelet sets, the nftables ruleset, mount points, cgroups, processes
// of the cluster) before and after, and fails the run if anything differs.
//
// The tests apply deploy/kubernetes/overlays/example unchanged, through a
// kustomization that only sets the namespace and the image names, and then
// look at the mesh from inside it: an Elixir pod's release evaluates code
// (`bin/gonode_example rpc`) that lists every node's connections (Elixir
// nodes through :rpc, gonode nodes through their built-in gonode server's
// info) and makes calls in both directions.
//
// TestKubernetesAPIStrategy runs gonode on --strategy kubernetes in that mesh
// and stops the API server for 30 s (scripts/k8s-apiserver.sh stop|start)
// and removes its RoleBinding; it leaves its namespace deleted, as it found it.
//
// Run it as root (about 20 minutes cold, most of it building Kubernetes):
//
//	go test -tags e2e -count=1 -v -timeout 60m ./test/e2e/
//
// With GONODE_K8S_REUSE=1 and a cluster already up (scripts/k8s-up.sh), the
// tests use it and leave it up, for working on the tests themselves.
package e2e
