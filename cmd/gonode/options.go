package main

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/metrics"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/pg"
)

// config is everything the command line and the environment decide. The
// node and discovery parts are those packages' own Config types; the rest is
// what only this binary uses.
type config struct {
	Node      node.Config
	Discovery discovery.Config

	// AppName is the basename of this node's name when Name is empty, and the
	// basename of discovered peers (libcluster's application_name).
	AppName string
	// AppNameSet records that AppName came from a flag or the environment.
	AppNameSet bool
	// PodIP is the host part of the default name; "" detects it.
	PodIP string
	// Cookie is the cookie given directly; "" reads CookieFile.
	Cookie node.Cookie
	// CookieFile is the file to read the cookie from; "" means
	// $HOME/.erlang.cookie when Cookie is also empty.
	CookieFile string
	// LooseCookieFile is the cookie file that was read, when group or others
	// may access it (resolve fills it; run warns about it once).
	LooseCookieFile fileMode
	// EPMDAddrSet records that Node.EPMDAddr came from a flag or the
	// environment; otherwise it follows Node.EPMDPort.
	EPMDAddrSet bool

	// MetricsAddr is the listen address of /metrics, /healthz and /readyz;
	// "" disables the listener.
	MetricsAddr string
	// MinPeers is how many connected peers /readyz wants.
	MinPeers int

	// PGScopes are the pg scopes the node runs (package node/pg).
	PGScopes []string

	// LogFormat is "json", "text" or "" (json unless stdout is a terminal).
	LogFormat string
	// LogLevel is debug, info, warn or error.
	LogLevel string
}

// Defaults of the settings that belong to this binary, each with its reason.
const (
	// defaultAppName is the basename when neither --name nor
	// --application-name says otherwise.
	defaultAppName = "gonode"
	// defaultLogLevel keeps routine per-peer events (debug) out of the logs.
	defaultLogLevel = "info"
)

func defaultConfig() config {
	d := discovery.DefaultConfig()
	return config{
		Node:        node.DefaultConfig(),
		Discovery:   d,
		AppName:     defaultAppName,
		MetricsAddr: metrics.DefaultAddr, // the metrics package's, with its reason
		LogLevel:    defaultLogLevel,
		PGScopes:    []string{pg.DefaultScope},
	}
}

// kind is how an option's text is read. Only kindString options take the
// empty string as a value; for every other kind an empty environment
// variable counts as unset.
type kind int

const (
	kindString   kind = iota // free text, "" is a value
	kindEnum                 // one of a fixed set of words
	kindBool                 // strconv.ParseBool
	kindInt                  // decimal integer
	kindDuration             // Go duration, or a bare integer in the option's unit
	kindList                 // comma-separated
)

func (k kind) metavar() string {
	switch k {
	case kindEnum:
		return "WORD"
	case kindBool:
		return "BOOL"
	case kindInt:
		return "N"
	case kindDuration:
		return "DURATION"
	case kindList:
		return "LIST"
	}
	return "TEXT"
}

// Groups, in --help order.
const (
	groupNode      = "Node"
	groupDiscovery = "Discovery"
	groupMetrics   = "Metrics"
	groupTLS       = "TLS"
	groupLogs      = "Logs"
)

var groups = []string{groupNode, groupTLS, groupDiscovery, groupMetrics, groupLogs}

// option is one row of the table that maps a flag to its environment
// variable and config field. --help, the docs and the parser all read it.
type option struct {
	group      string
	name       string // the flag, without dashes
	env        string // its environment variable
	def        string // the default, as shown
	kind       kind
	libcluster string // the libcluster option it corresponds to, "" if none
	usage      string // one line
	secret     bool   // never echo the value
	// field is the config field the option sets, as the packages' Validate
	// names it ("Node.NetTickTime", "Discovery.PollingInterval"), so that a
	// problem they report is told with the option's flag and variable.
	field string
	set   func(c *config, v string) error
}

// label names the option in an error: its flag and its variable.
func (o option) label() string { return "--" + o.name + " / " + o.env }

// optionFields maps the options that set a field of node.Config (or of
// this binary's config) to that field; the discovery rows take theirs from
// discovery.Flags.
var optionFields = map[string]string{
	"name": "Node.Name", "application-name": "Discovery.ApplicationName", "cookie": "Node.Cookie",
	"distribution": "Node.NameMode", "listen-addr": "Node.ListenAddr", "dist-port": "Node.DistPort",
	"hidden": "Node.Hidden", "net-ticktime": "Node.NetTickTime", "handshake-timeout": "Node.HandshakeTimeout",
	"mailbox-size": "Node.MailboxSize", "max-overflow-bytes": "Node.MaxOverflowBytes", "epmd": "Node.EPMD",
	"epmd-port": "Node.EPMDPort", "epmd-addr": "Node.EPMDAddr",
	"tls-cert": "Node.TLS.CertFile", "tls-key": "Node.TLS.KeyFile", "tls-ca": "Node.TLS.CAFile",
	"tls-verify": "Node.TLS.Verify", "tls-server-name": "Node.TLS.ServerName",
	"min-peers": "MinPeers",
}

// options returns the table. The discovery rows come from discovery.Flags,
// so their names, variables, defaults and help stay that package's.
func options() []option {
	n := node.DefaultConfig()
	opts := []option{
		{group: groupNode, name: "name", env: "RELEASE_NODE", def: "<application-name>@<pod-ip>", kind: kindString,
			usage: "full node name, basename@host",
			set:   func(c *config, v string) error { c.Node.Name = v; return nil }},
		{group: groupNode, name: "application-name", env: "GONODE_APPLICATION_NAME", def: defaultAppName, kind: kindString,
			libcluster: "application_name",
			usage:      "basename of this node's default name and of discovered peers' names",
			set:        func(c *config, v string) error { c.AppName, c.AppNameSet = v, true; return nil }},
		{group: groupNode, name: "pod-ip", env: "POD_IP", def: "first non-loopback IPv4, else 127.0.0.1", kind: kindString,
			usage: "host part of the default name (IPv4 or IPv6)",
			set:   func(c *config, v string) error { c.PodIP = v; return nil }},
		{group: groupNode, name: "cookie", env: "RELEASE_COOKIE", def: "", kind: kindString, secret: true,
			usage: "distribution cookie; overrides --cookie-file (a flag shows in ps: prefer the variable or a file)",
			set:   func(c *config, v string) error { c.Cookie = node.Cookie(v); return nil }},
		{group: groupNode, name: "cookie-file", env: "GONODE_COOKIE_FILE", def: "$HOME/.erlang.cookie", kind: kindString,
			usage: "file holding the cookie (a trailing newline is dropped); one the group or others may read gets a warning: chmod 400 it",
			set:   func(c *config, v string) error { c.CookieFile = v; return nil }},
		{group: groupNode, name: "distribution", env: "RELEASE_DISTRIBUTION", def: string(n.NameMode), kind: kindEnum,
			usage: "naming mode: name (long names) or sname (short names)",
			set:   func(c *config, v string) error { c.Node.NameMode = node.NameMode(v); return nil }},
		{group: groupNode, name: "listen-addr", env: "GONODE_LISTEN_ADDR", def: n.ListenAddr, kind: kindString,
			usage: "address the distribution listener binds; empty: all interfaces",
			set:   func(c *config, v string) error { c.Node.ListenAddr = v; return nil }},
		{group: groupNode, name: "dist-port", env: "GONODE_DIST_PORT", def: strconv.Itoa(n.DistPort), kind: kindInt,
			usage: "distribution listen port; 0 picks a free one",
			set:   intSetter(func(c *config) *int { return &c.Node.DistPort })},
		{group: groupNode, name: "hidden", env: "GONODE_HIDDEN", def: strconv.FormatBool(n.Hidden), kind: kindBool,
			usage: "connect as a hidden node (not in nodes(), ignored by global and pg)",
			set:   boolSetter(func(c *config) *bool { return &c.Node.Hidden })},
		{group: groupNode, name: "net-ticktime", env: "GONODE_NET_TICKTIME", def: seconds(n.NetTickTime), kind: kindDuration,
			usage: "OTP net_ticktime: a silent peer is dropped after this; bare numbers are seconds",
			set:   durationSetter(time.Second, func(c *config) *time.Duration { return &c.Node.NetTickTime })},
		{group: groupNode, name: "handshake-timeout", env: "GONODE_HANDSHAKE_TIMEOUT", def: seconds(n.HandshakeTimeout), kind: kindDuration,
			usage: "OTP net_setuptime: bound of one handshake; bare numbers are seconds",
			set:   durationSetter(time.Second, func(c *config) *time.Duration { return &c.Node.HandshakeTimeout })},
		{group: groupNode, name: "mailbox-size", env: "GONODE_MAILBOX_SIZE", def: strconv.Itoa(n.MailboxSize), kind: kindInt,
			usage: "mailbox capacity of every process; peers' messages wait in their connection's overflow, a local send to a full mailbox fails",
			set:   intSetter(func(c *config) *int { return &c.Node.MailboxSize })},
		{group: groupNode, name: "max-overflow-bytes", env: "GONODE_MAX_OVERFLOW_BYTES", def: strconv.Itoa(n.MaxOverflowBytes), kind: kindInt,
			usage: "bytes of a peer's messages held for full mailboxes; at the bound the node stops reading from the peer",
			set:   intSetter(func(c *config) *int { return &c.Node.MaxOverflowBytes })},
		{group: groupNode, name: "epmd", env: "GONODE_EPMD", def: string(n.EPMD), kind: kindEnum,
			usage: "EPMD mode: embedded (serve it), external (register with --epmd-addr) or none",
			set:   func(c *config, v string) error { c.Node.EPMD = node.EPMDMode(v); return nil }},
		{group: groupNode, name: "epmd-port", env: "GONODE_EPMD_PORT", def: strconv.Itoa(n.EPMDPort), kind: kindInt,
			usage: "EPMD port served here and asked on peers",
			set:   intSetter(func(c *config) *int { return &c.Node.EPMDPort })},
		{group: groupNode, name: "epmd-addr", env: "GONODE_EPMD_ADDR", def: "127.0.0.1:<epmd-port>", kind: kindString,
			usage: "host:port of the EPMD to register with (external mode)",
			set:   func(c *config, v string) error { c.Node.EPMDAddr, c.EPMDAddrSet = v, true; return nil }},
	}
	opts = append(opts,
		option{group: groupTLS, name: "tls-cert", env: "GONODE_TLS_CERT", def: "", kind: kindString,
			usage: "PEM certificate (and chain) of this node, as server and client; setting it runs distribution over TLS (peers need -proto_dist inet_tls)",
			set:   func(c *config, v string) error { c.Node.TLS.CertFile = v; return nil }},
		option{group: groupTLS, name: "tls-key", env: "GONODE_TLS_KEY", def: "", kind: kindString,
			usage: "PEM private key of --tls-cert",
			set:   func(c *config, v string) error { c.Node.TLS.KeyFile = v; return nil }},
		option{group: groupTLS, name: "tls-ca", env: "GONODE_TLS_CA", def: "", kind: kindString,
			usage: "PEM bundle of the CAs peers' certificates must chain to (required with --tls-verify peer)",
			set:   func(c *config, v string) error { c.Node.TLS.CAFile = v; return nil }},
		option{group: groupTLS, name: "tls-verify", env: "GONODE_TLS_VERIFY", def: string(node.TLSVerifyPeer), kind: kindEnum,
			usage: "peer: verify every peer's certificate and require one (verify_peer, fail_if_no_peer_cert); none: encrypt only",
			set:   func(c *config, v string) error { c.Node.TLS.Verify = node.TLSVerify(v); return nil }},
		option{group: groupNode, name: "pg-scopes", env: "GONODE_PG_SCOPES", def: pg.DefaultScope, kind: kindList,
			usage: "pg scopes to run, e.g. pg,Elixir.Phoenix.PubSub (Elixir's :pg and Phoenix.PubSub's); empty: none; needs a visible node",
			set:   func(c *config, v string) error { c.PGScopes = splitList(v); return nil }},
		option{group: groupTLS, name: "tls-server-name", env: "GONODE_TLS_SERVER_NAME", def: "", kind: kindString,
			usage: "name every peer's certificate must be valid for; empty: any name, the CA decides",
			set:   func(c *config, v string) error { c.Node.TLS.ServerName = v; return nil }},
	)
	for _, f := range discovery.Flags() {
		if f.Field == "ApplicationName" {
			continue // --application-name above sets it, with the node's basename
		}
		k, set := discoverySetter(f.Field)
		usage := f.Usage
		if f.Field == "PollingInterval" {
			usage += "; bare numbers are milliseconds"
		}
		opts = append(opts, option{group: groupDiscovery, name: f.Name, env: f.Env, def: f.Default, kind: k,
			libcluster: f.Libcluster, usage: usage, field: "Discovery." + f.Field, set: set})
	}
	opts = append(opts,
		option{group: groupMetrics, name: "metrics-addr", env: "GONODE_METRICS_ADDR", def: metrics.DefaultAddr, kind: kindString,
			usage: "listen address of /metrics, /healthz, /readyz and /debug/peers; empty disables it",
			set:   func(c *config, v string) error { c.MetricsAddr = v; return nil }},
		option{group: groupMetrics, name: "min-peers", env: "GONODE_MIN_PEERS", def: "0", kind: kindInt,
			usage: "connected peers /readyz wants before it reports ready",
			set:   intSetter(func(c *config) *int { return &c.MinPeers })},
		option{group: groupLogs, name: "log-format", env: "GONODE_LOG_FORMAT", def: "json, text on a terminal", kind: kindEnum,
			usage: "log format: json or text",
			set:   func(c *config, v string) error { c.LogFormat = v; return nil }},
		option{group: groupLogs, name: "log-level", env: "GONODE_LOG_LEVEL", def: defaultLogLevel, kind: kindEnum,
			usage: "lowest level logged: debug, info, warn or error",
			set:   func(c *config, v string) error { c.LogLevel = v; return nil }},
	)
	for i := range opts {
		if f, ok := optionFields[opts[i].name]; ok {
			opts[i].field = f
		}
	}
	return opts
}

// optionFor returns the option that sets field, if any.
func optionFor(opts []option, field string) (option, bool) {
	for _, o := range opts {
		if o.field == field {
			return o, true
		}
	}
	return option{}, false
}

// labelProblem prefixes a problem that node.Config.Validate or
// discovery.Config.Validate reported about a field with the flag and the
// variable that set the field; relabel, when it has the field, overrides
// the label (the cookie read from a file is the file's problem).
func labelProblem(opts []option, err error, relabel map[string]string) error {
	var field string
	var nf *node.FieldError
	var df *discovery.FieldError
	switch {
	case errors.As(err, &nf):
		field = "Node." + nf.Field
	case errors.As(err, &df):
		field = "Discovery." + df.Field
	default:
		return err
	}
	if l, ok := relabel[field]; ok {
		return fmt.Errorf("%s: %w", l, err)
	}
	if o, ok := optionFor(opts, field); ok {
		return fmt.Errorf("%s: %w", o.label(), err)
	}
	return err
}

// discoverySetter returns how a discovery.Flags row is read and stored, by
// the Config field it names. A field this binary does not know gets a setter
// that fails, so using it is an error rather than silently ignored; a test
// checks that there is none.
func discoverySetter(field string) (kind, func(*config, string) error) {
	d := func(c *config) *discovery.Config { return &c.Discovery }
	switch field {
	case "Strategy":
		return kindEnum, func(c *config, v string) error { d(c).Strategy = discovery.StrategyName(v); return nil }
	case "Service":
		return kindString, func(c *config, v string) error { d(c).Service = v; return nil }
	case "Namespace":
		return kindString, func(c *config, v string) error { d(c).Namespace = v; return nil }
	case "ClusterDomain":
		return kindString, func(c *config, v string) error { d(c).ClusterDomain = v; return nil }
	case "Hosts":
		return kindList, func(c *config, v string) error { d(c).Hosts = splitList(v); return nil }
	case "IPFamily":
		return kindEnum, func(c *config, v string) error { d(c).IPFamily = discovery.IPFamily(v); return nil }
	case "Resolver":
		return kindString, func(c *config, v string) error { d(c).Resolver = v; return nil }
	case "ResolvConf":
		return kindString, func(c *config, v string) error { d(c).ResolvConf = v; return nil }
	case "PollingInterval":
		// libcluster's polling_interval is in milliseconds.
		return kindDuration, durationSetter(time.Millisecond, func(c *config) *time.Duration { return &d(c).PollingInterval })
	case "Prune":
		return kindBool, boolSetter(func(c *config) *bool { return &d(c).Prune })
	case "PruneAfter":
		return kindInt, intSetter(func(c *config) *int { return &d(c).PruneAfter })
	case "MaxConcurrentConnects":
		return kindInt, intSetter(func(c *config) *int { return &d(c).MaxConcurrentConnects })
	case "ConnectTimeout":
		return kindDuration, durationSetter(0, func(c *config) *time.Duration { return &d(c).ConnectTimeout })
	case "MaxPeers":
		return kindInt, intSetter(func(c *config) *int { return &d(c).MaxPeers })
	case "KubernetesSelector":
		return kindString, func(c *config, v string) error { d(c).KubernetesSelector = v; return nil }
	case "KubernetesMode":
		return kindEnum, func(c *config, v string) error { d(c).KubernetesMode = discovery.KubernetesMode(v); return nil }
	case "Kubeconfig":
		return kindString, func(c *config, v string) error { d(c).Kubeconfig = v; return nil }
	}
	return kindString, func(*config, string) error {
		return fmt.Errorf("discovery field %s is not supported by this gonode binary", field)
	}
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func intSetter(field func(*config) *int) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*field(c) = n
		return nil
	}
}

func boolSetter(field func(*config) *bool) func(*config, string) error {
	return func(c *config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a boolean (want true or false)", v)
		}
		*field(c) = b
		return nil
	}
}

// durationSetter reads a Go duration ("1m30s", "500ms") or, when bare is
// non-zero, a plain integer counted in bare (OTP's net_ticktime is seconds,
// libcluster's polling_interval milliseconds).
func durationSetter(bare time.Duration, field func(*config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := parseDuration(v, bare)
		if err != nil {
			return err
		}
		*field(c) = d
		return nil
	}
}

func parseDuration(v string, bare time.Duration) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		switch {
		case bare == 0 && n != 0:
			return 0, fmt.Errorf("%q has no unit (want a duration such as 5s or 500ms)", v)
		case n > int64(1<<63-1)/int64(max(bare, 1)) || n < -int64(1<<63-1)/int64(max(bare, 1)):
			return 0, fmt.Errorf("%q is out of range", v)
		}
		return time.Duration(n) * bare, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		if bare != 0 {
			return 0, fmt.Errorf("%q is neither a duration (such as 5s) nor a whole number of %s", v, unitName(bare))
		}
		return 0, fmt.Errorf("%q is not a duration (such as 5s or 500ms)", v)
	}
	return d, nil
}

// seconds shows a whole number of seconds as "60s" rather than "1m0s".
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

func unitName(d time.Duration) string {
	switch d {
	case time.Millisecond:
		return "milliseconds"
	case time.Second:
		return "seconds"
	}
	return d.String()
}

// logLevel maps --log-level onto slog.
func logLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
}

// envPrefix starts the names of this binary's own environment variables.
const envPrefix = "GONODE_"

// envSlip is an environment variable that starts with envPrefix but that no
// option reads (a typo such as GONODE_SERVCE would otherwise be silently
// ignored), with the option variable closest to it, if one is close.
type envSlip struct {
	name    string
	closest string
}

// unknownEnv returns, sorted by name, the envPrefix variables of environ
// (KEY=VALUE entries) that no option of opts reads.
func unknownEnv(environ []string, opts []option) []envSlip {
	known := make(map[string]bool, len(opts))
	for _, o := range opts {
		known[o.env] = true
	}
	seen := map[string]bool{}
	var out []envSlip
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || known[name] || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, envSlip{name: name, closest: closestEnv(name, opts)})
	}
	slices.SortFunc(out, func(a, b envSlip) int { return strings.Compare(a.name, b.name) })
	return out
}

// closestEnv returns the envPrefix variable of opts nearest to name in edit
// distance, when it is close enough to be a slip of the keyboard: at most 2
// edits, or a third of the name's length after the prefix. "" otherwise.
func closestEnv(name string, opts []option) string {
	suffix := strings.TrimPrefix(name, envPrefix)
	best, bestD := "", -1
	for _, o := range opts {
		if !strings.HasPrefix(o.env, envPrefix) {
			continue
		}
		d := editDistance(suffix, strings.TrimPrefix(o.env, envPrefix))
		if bestD < 0 || d < bestD {
			best, bestD = o.env, d
		}
	}
	if bestD >= 0 && (bestD <= 2 || bestD <= len(suffix)/3) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance of a and b (bytes; the names
// are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
