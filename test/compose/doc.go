//go:build compose

// Package compose runs the repository's Dockerfile and docker-compose.yml,
// unchanged, with Debian's podman and docker-compose, and checks what a user
// of `docker compose up` sees.
//
// TestMain starts a podman API service in namespaces of its own
// (scripts/compose-up.sh), builds the base images offline
// (scripts/compose-images.sh: golang, prom/prometheus and the Elixir
// example's release, tagged with their public names), builds gonode's image
// with `docker-compose build` through that service, and brings the stack up
// with 3 Elixir and 2 gonode containers. The tests check the image (size,
// user, health check), the full mesh and calls both ways, what Prometheus
// scrapes through DNS service discovery, and that a stopped Elixir container
// is pruned and rejoins when started. TestMain then runs `docker-compose
// down`, checks that it left no container, network, bridge or iptables rule
// of the project, stops the service (scripts/compose-down.sh) and fails the
// run if the machine is not as it was (iptables, nftables, ip_forward, mount
// points, the paths podman uses, podman's processes).
//
// Run it as root (a few minutes; the first run also debootstraps a root
// filesystem and builds the Elixir release):
//
//	go test -tags compose -count=1 -v -timeout 30m ./test/compose/
package compose
