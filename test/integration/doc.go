//go:build integration

// Package integration runs gonode the way it runs in a Kubernetes cluster
// and proves, against real Elixir nodes and a real DNS server, that Go and
// Elixir pods form one mesh and survive DNS outages, partitions and bad peers.
//
// # The cluster
//
// NewCluster builds a small Kubernetes-like cluster out of Linux network
// namespaces, all made by the harness and none touching the root namespace:
//
//   - a "node" namespace (gnit-<id>-br) holds the bridge br0 with
//     198.18.0.1/24, the address the harness itself probes pods from, the way
//     a kubelet reaches pod IPs;
//   - every pod is a namespace of its own (gnit-<id>-<pod>) with lo up and a
//     veth whose pod end is eth0 with an address in 198.18.0.0/24 and whose
//     other end is a port of br0, so each pod has its own IP and its own port
//     4369; there is no default route, so nothing leaves 198.18.0.0/24;
//   - /etc/netns/<pod namespace>/resolv.conf names the DNS pod and carries a
//     pod's search path (<namespace>.svc.cluster.local svc.cluster.local
//     cluster.local) and ndots:5; `ip netns exec` binds it over
//     /etc/resolv.conf for every process of the pod;
//   - the DNS pod (198.18.0.2) runs Debian's dnsmasq answering the headless
//     Service <service>.<namespace>.svc.cluster.local from a hosts file of the
//     Ready pods, rewritten and reloaded with SIGHUP on every change, with a
//     1 s TTL and no upstream. StopDNS and StartDNS make a DNS outage.
//
// Elixir pods run `elixir --name myapp@<ip>` with the project's own Elixir
// module (elixir/gonode_it.ex, embedded and written into the cluster's
// directory): a libcluster Kubernetes.DNS-like poller, an :echo GenServer and
// a control loop on standard input through which the harness evaluates code
// (Eval, Nodes). A Release other than the host's runs in its chroot, with the
// pod's resolv.conf and the module bound into it in a private mount namespace.
//
// gonode pods run the built binary (BuildGonode) configured only through its
// environment, as a Deployment would configure it.
//
// With TLSFiles in their options, pods run distribution over TLS: Elixir pods
// with -proto_dist inet_tls and an ssl_dist_optfile the harness writes, gonode
// pods with GONODE_TLS_CERT, GONODE_TLS_KEY and GONODE_TLS_CA. The files live
// under the cluster's directory (Cluster.TLSDir), which chroot releases see at
// /mnt like the module.
//
// # How the harness reaches pods
//
// The test process stays in the root network namespace. To reach a pod (HTTP
// to /metrics and /readyz, DNS probes, a plain TCP listener standing in for a
// reused pod IP) it opens the socket from a goroutine locked to an OS thread
// that has entered the node namespace with setns(2); the thread is never
// unlocked, so it dies with the goroutine, and since Go 1.10 threads started
// while a locked thread runs are cloned from a clean template thread. A socket
// belongs to the namespace it was created in, so the rest of the program uses
// it as any other. No process is re-executed and nothing is added to the
// root namespace.
//
// Everything is torn down by Cluster.Close (the tests call it in t.Cleanup,
// also after a failure): processes of every pod namespace are killed, the
// namespaces deleted (which deletes their veths), /etc/netns/<ns> removed.
//
// # Scenarios
//
// Each is a test with a cluster of its own, so they run in parallel:
// TestElixirMeshViaDNS (the harness alone, OTP 25/27/29), TestMesh (3 Elixir +
// 2 gonode pods, calls both ways, OTP 25/27/29), TestJoin, TestLeave,
// TestDNSOutage, TestPartitionHeal, TestWrongCookie, TestIPReuse,
// TestGracefulStop, TestScale (10 pods; global's sync time with and without the
// gonode pods, logged) and TestTLSMesh (2 Elixir + 2 gonode
// pods with TLS distribution and mutual verification, OTP 25/27/29). Waits are bounded polls that
// report the last state they saw; a failing test prints the logs of its pods
// and of dnsmasq.
//
// This package needs root, iproute2, util-linux (unshare), dnsmasq, Erlang and
// Elixir (scripts/install-deps.sh); the OTP 27 and 29 chroots come from
// scripts/otp-matrix.sh. Every file is behind the integration build tag:
//
//	go test -tags integration -count=1 ./test/integration/
//	go test -tags integration -count=1 -run TestPartitionHeal -v ./test/integration/
//
// scripts/demo.sh runs cmd/demo on the same harness.
package integration
