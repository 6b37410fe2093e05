// Package discovery finds the other nodes of an Erlang/Elixir cluster and
// keeps this node connected to them, like libcluster's
// Cluster.Strategy.Kubernetes.DNS, DNSSRV and Epmd strategies, without their
// failure modes.
//
// # Strategies
//
// StrategyDNS resolves the A and/or AAAA records of a headless Service and
// names each peer <application-name>@<ip>; StrategyDNSSRV resolves the SRV
// records of <service>.<namespace>.svc.<cluster domain> and names each peer
// <application-name>@<target host>; StrategyStatic uses a fixed list of node
// names. With no Service and no Hosts, discovery is off.
//
// # Design
//
// A pure core, Plan, holds every rule: from a State and one Input (a poll's
// answer and the connected set, or the results of earlier actions) it
// returns the next State, the Actions to run (disconnects, then connects,
// each sorted by name) and Events worth a log line. It reads no clock,
// starts no goroutine, does no I/O and logs nothing, so tests drive it step
// by step. Its rules: a failed lookup never disconnects anyone; a
// discovered peer is disconnected only after PruneAfter consecutive
// successful answers without it; peers that connected without being
// discovered are never touched; the node is never its own peer; a failing
// peer backs off exponentially (1 s to 60 s, jitter from a seeded source).
//
// The shell, Discoverer, runs one poll loop on an injected Clock: the first
// poll at once, then every PollingInterval +-10 %, polls never overlapping.
// It looks up through a Resolver, reads Connector.Connected, calls Plan, runs
// the actions with at most MaxConcurrentConnects at once, each bounded by
// ConnectTimeout, feeds the results back, and reports to an Observer. When
// its context ends (or Stop is called) it cancels running connects, waits
// for them and starts nothing new. Snapshot exposes per-peer state, which
// package metrics serves on /debug/peers; Ready reports that the first poll
// succeeded.
// Connect- and disconnect-failure warnings are rate-limited (2 a minute per
// peer, 20 a minute in all, with suppressed=N counts); the Observer hears
// every failure.
//
// DNSResolver is the Resolver on github.com/miekg/dns: resolv.conf's
// nameservers, search list, ndots, timeout, attempts and rotate; EDNS0 with a
// 4096-byte UDP buffer; TCP when a reply is truncated; CNAME chains followed
// up to MaxCNAMEHops. It tells a valid empty answer (ErrNotFound) from a
// failed lookup (ErrLookupFailed). One DNS message holds at most 65,535
// bytes, about 4,090 A records: a larger headless Service cannot be
// discovered completely by DNS, and the answer is flagged NearLimit.
//
// # Imports
//
// discovery imports only the standard library, github.com/miekg/dns and
// gonode's stdlib-only internal/ratelog. It
// declares the interfaces it consumes (Resolver, Connector, Clock, Observer):
// the node package satisfies Connector without importing discovery, and the
// metrics package adapts Observer into Prometheus metrics. cmd/gonode and
// metrics may import discovery; discovery imports neither. Test doubles live
// in discovery/discoverytest.
package discovery
