// Command gonode runs an Erlang distribution node that joins Elixir and
// Erlang clusters: it listens for distribution connections, serves or
// registers with EPMD, discovers its peers the way libcluster's Kubernetes
// strategies do, and serves Prometheus metrics and health endpoints.
//
// Every setting is a flag with an environment variable (a flag overrides its
// variable, which overrides the default); `gonode --help` lists them and
// docs/configuration.md, generated from the same table, documents them.
//
// Design: one table (options.go) maps each flag to its environment variable
// and to a field of node.Config, discovery.Config (whose rows come from
// discovery.Flags) or this command's own settings; --help, the generated
// doc and the parser all read it. parse applies defaults, then variables,
// then flags, and collects every bad value; resolve derives the node name
// (<application-name>@<pod-ip> by default) and the cookie (--cookie, else
// --cookie-file, else $HOME/.erlang.cookie) and joins node.Config.Validate,
// discovery.Config.Validate and this command's checks, so bad configuration
// exits with status 2 and one message listing every problem (a configError,
// whose problems errors.Is and errors.As see). run wires the node,
// discovery and the HTTP listener and stops them when its context ends; it
// opts in to node.WithErgoLogs, so ergo's warnings (a process-wide log
// package output the library leaves alone) land in gonode's own log; main only turns SIGTERM and SIGINT into that context (a second
// signal exits at once) and the process environment into an environment.
//
// The cookie is a node.Cookie, which redacts itself, and no error of this
// command quotes it. A cookie file that group or others may access is used
// (Kubernetes mounts a Secret 0644 by default) with one warning at start
// that names the file, its mode and the fix.
//
// Nothing imports this package.
package main
