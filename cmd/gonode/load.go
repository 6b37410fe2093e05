package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gonode/gonode/metrics"
	"github.com/gonode/gonode/node"
)

// environment is what the binary reads from its surroundings besides its
// arguments. main fills it from the real process; tests fill it by hand.
type environment struct {
	// LookupEnv reads an environment variable, like os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Environ lists the environment as KEY=VALUE, like os.Environ; run
	// warns about the GONODE_ variables no option reads. Nil lists nothing.
	Environ func() []string
	// InterfaceAddrs lists the host's addresses, like net.InterfaceAddrs; it
	// finds the default pod IP.
	InterfaceAddrs func() ([]net.Addr, error)
	// Hostname is the host's name, like os.Hostname; it is the host part of
	// the default name with short names.
	Hostname func() (string, error)
	// IsTerminal reports whether w is a terminal; it picks the default log
	// format.
	IsTerminal func(w io.Writer) bool
	// OnStarted, when set, is called once the node, discovery and the HTTP
	// listener run; tests wait for it instead of sleeping.
	OnStarted func(started)
}

func osEnvironment() environment {
	return environment{
		LookupEnv:      os.LookupEnv,
		Environ:        os.Environ,
		InterfaceAddrs: net.InterfaceAddrs,
		Hostname:       os.Hostname,
		IsTerminal:     isTerminal,
	}
}

// isTerminal reports whether w is a character device, which is what a
// terminal is to a process.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// action is what the command line asks for besides the configuration.
type action int

const (
	actionRun action = iota
	actionHelp
	actionVersion
	actionHelpMarkdown
)

// errUsage is wrapped by every usageError.
var errUsage = errors.New("usage")

// usageError is a command line that cannot be read at all (an unknown flag,
// a flag without its value, a stray argument). It wraps errUsage and the
// problem.
type usageError struct {
	problem error
}

func (e *usageError) Error() string   { return errUsage.Error() + ": " + e.problem.Error() }
func (e *usageError) Unwrap() []error { return []error{errUsage, e.problem} }

// usagef is a usageError described by format and args (%w wraps).
func usagef(format string, args ...any) error {
	return &usageError{problem: fmt.Errorf(format, args...)}
}

// errInvalid is wrapped by every configError: the problems of an otherwise
// readable configuration.
var errInvalid = errors.New("invalid configuration")

// configError is every problem of a configuration that could be read, in the
// order found. It wraps errInvalid and each problem, so errors.Is finds the
// sentinels the problems wrap (node.ErrInvalidName, discovery.ErrInvalidConfig
// and so on) and errors.As finds the list.
type configError struct {
	problems []error
}

// Error is one line a problem, each starting with errInvalid's text.
func (e *configError) Error() string {
	lines := make([]string, len(e.problems))
	for i, p := range e.problems {
		lines[i] = errInvalid.Error() + ": " + p.Error()
	}
	return strings.Join(lines, "\n")
}

func (e *configError) Unwrap() []error { return append([]error{errInvalid}, e.problems...) }

// problems collects a configError.
type problems []error

// addf adds a problem described by format and args (%w wraps).
func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Errorf(format, args...)) }

// addValidation adds the problems a package's Validate reported, less those
// skip selects, each named by the flag and variable of the field it is
// about (labelProblem; opts nil adds them as they are). Every Validate here
// (node.Config, discovery.Config) returns errors.Join of its problems, so
// they are what the join unwraps to, one level: a problem that wraps two
// errors (fmt.Errorf with two %w) stays one problem.
func (p *problems) addValidation(err error, skip func(error) bool, opts []option, relabel map[string]string) {
	if err == nil {
		return
	}
	parts := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	}
	for _, e := range parts {
		if skip == nil || !skip(e) {
			if opts != nil {
				e = labelProblem(opts, e, relabel)
			}
			*p = append(*p, e)
		}
	}
}

// merge adds the problems of a configError (nil adds nothing).
func (p *problems) merge(err error) {
	var ce *configError
	if errors.As(err, &ce) {
		*p = append(*p, ce.problems...)
	} else if err != nil {
		*p = append(*p, err)
	}
}

// err is the configError of the problems, nil when there are none.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &configError{problems: p}
}

// rawValue records the last value a flag was given; the table converts it
// later, so that every bad value is reported, not just the first.
type rawValue struct {
	set   bool
	value string
	bool  bool
}

func (r *rawValue) String() string     { return r.value }
func (r *rawValue) Set(v string) error { r.set, r.value = true, v; return nil }
func (r *rawValue) IsBoolFlag() bool   { return r.bool }

// parse reads args and the environment onto the defaults: a flag overrides
// its environment variable, which overrides the default. It returns every
// bad value in a configError; a command line that cannot be read returns an
// usageError.
func parse(args []string, env environment) (config, action, error) {
	opts := options()
	fs := flag.NewFlagSet("gonode", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	raw := make(map[string]*rawValue, len(opts))
	for _, o := range opts {
		r := &rawValue{bool: o.kind == kindBool}
		raw[o.name] = r
		fs.Var(r, o.name, o.usage)
	}
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	version := fs.Bool("version", false, "")
	markdown := fs.Bool("help-markdown", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, actionHelp, nil
		}
		return config{}, actionRun, &usageError{problem: err}
	}
	switch {
	case *help:
		return config{}, actionHelp, nil
	case *version:
		return config{}, actionVersion, nil
	case *markdown:
		return config{}, actionHelpMarkdown, nil
	case fs.NArg() > 0:
		stray := fs.Arg(0)
		if i := len(args) - fs.NArg(); i > 0 {
			prev := strings.TrimLeft(args[i-1], "-")
			if r, ok := raw[prev]; ok && r.bool && !strings.Contains(prev, "=") {
				return config{}, actionRun, usagef("unexpected argument %q: a boolean flag takes its value after '=', as in --%s=%s",
					stray, prev, stray)
			}
		}
		return config{}, actionRun, usagef("unexpected argument %q (every setting is a --flag)", stray)
	}

	c := defaultConfig()
	var errs problems
	for _, o := range opts {
		var v string
		if r := raw[o.name]; r.set {
			v = r.value
		} else if ev, ok := env.LookupEnv(o.env); ok && (ev != "" || o.kind == kindString) {
			v = ev
		} else {
			continue
		}
		if err := o.set(&c, v); err != nil {
			if o.secret {
				err = errors.New("invalid value")
			}
			errs.addf("%s: %w", o.label(), err)
		}
	}
	return c, actionRun, errs.err()
}

// resolve fills in what the configuration derives (the default name, the
// cookie from its file, the EPMD address from the EPMD port, discovery's
// application name) and checks the whole: node.Config.Validate,
// discovery.Config.Validate and this binary's own rules. It reports every
// problem in a configError and never mentions the cookie's value.
func resolve(c config, env environment) (config, error) {
	opts := options()
	label := func(name string) string {
		for _, o := range opts {
			if o.name == name {
				return o.label()
			}
		}
		return "--" + name
	}
	var errs problems
	bad := errs.addf

	nameDerived := c.Node.Name == ""
	nameBroken := false // a derived name's own part is already reported
	appNameOK := true
	if nameDerived || c.AppNameSet {
		if err := node.ValidateBasename(c.AppName); err != nil {
			bad("%s: %v", label("application-name"), err)
			nameBroken = nameDerived
			appNameOK = false
		}
	}
	var podIP string
	if c.PodIP != "" {
		ip, err := parsePodIP(c.PodIP)
		if err != nil {
			bad("%s: %v", label("pod-ip"), err)
			nameBroken = nameBroken || nameDerived && c.Node.NameMode != node.ShortNames
		}
		podIP = ip
	}
	if nameDerived {
		host, err := defaultHost(c.Node.NameMode, podIP, env)
		if err != nil {
			bad("%s: empty, and %v", label("name"), err)
			nameBroken = true
		}
		c.Node.Name = c.AppName + "@" + host
	}

	if !c.EPMDAddrSet {
		c.Node.EPMDAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Node.EPMDPort))
	} else if c.Node.EPMDAddr != "" {
		if err := checkHostPort(c.Node.EPMDAddr, 1); err != nil {
			bad("%s: %v", label("epmd-addr"), err)
		}
	}

	cookieOK := true
	relabel := map[string]string{}
	if c.Cookie == "" {
		ck, file, err := readCookie(c.CookieFile, env)
		if err != nil {
			errs.addf("%s: %w", label("cookie-file"), err)
			cookieOK = false
		}
		relabel["Node.Cookie"] = label("cookie-file") + " (the file's cookie)"
		c.Cookie = ck
		if file.Mode&0o077 != 0 {
			c.LooseCookieFile = file
		}
	}
	c.Node.Cookie = c.Cookie

	// The node's own checks, less what is reported above already: a cookie
	// that could not be read is not also empty, and a name that could not be
	// derived is not also invalid.
	errs.addValidation(c.Node.Validate(), func(err error) bool {
		return !cookieOK && errors.Is(err, node.ErrEmptyCookie) || nameBroken && errors.Is(err, node.ErrInvalidName)
	}, opts, relabel)

	if m := c.Node.NameMode; m != node.LongNames && m != node.ShortNames && !nameBroken {
		// node.Config.Validate checks the name only under a known mode;
		// report a name that no mode accepts as well.
		if err := node.ValidateName(c.Node.Name, node.LongNames); err != nil {
			errs.addf("%s: %w: %w", label("name"), node.ErrInvalidConfig, err)
		}
	}

	if c.AppNameSet {
		c.Discovery.ApplicationName = c.AppName
	} else {
		c.Discovery.ApplicationName = "" // the basename of this node's name
	}
	checkDisc := c.Discovery
	if !appNameOK {
		checkDisc.ApplicationName = "" // reported above
	}
	errs.addValidation(checkDisc.Validate(), nil, opts, nil)

	if c.MetricsAddr != "" {
		if err := checkHostPort(c.MetricsAddr, 0); err != nil {
			bad("%s: %v", label("metrics-addr"), err)
		}
	}
	// The server's own rules, less the address checked above (it also
	// accepts what checkHostPort refuses, such as a port name).
	if err := (metrics.ServerConfig{MinPeers: c.MinPeers}).Validate(); err != nil {
		errs.addf("%s: %w", label("min-peers"), err)
	}
	switch c.LogFormat {
	case "", "json", "text":
	default:
		bad("%s: unknown format %q (want json or text)", label("log-format"), c.LogFormat)
	}
	if _, err := logLevel(c.LogLevel); err != nil {
		bad("%s: %v", label("log-level"), err)
	}
	return c, errs.err()
}

// load is parse then resolve; a configError holds the problems of both.
func load(args []string, env environment) (config, action, error) {
	c, act, err := parse(args, env)
	if act != actionRun || errors.Is(err, errUsage) {
		return c, act, err
	}
	c, rerr := resolve(c, env)
	var errs problems
	errs.merge(err)
	errs.merge(rerr)
	return c, act, errs.err()
}

// parsePodIP accepts an IPv4 or IPv6 address, IPv6 optionally in brackets,
// and returns it in canonical form (an IPv4-mapped IPv6 address as IPv4).
func parsePodIP(s string) (string, error) {
	t := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	ip, err := netip.ParseAddr(t)
	if err != nil {
		return "", fmt.Errorf("%q is not an IP address", s)
	}
	if ip.Zone() != "" {
		return "", fmt.Errorf("%q has a zone, which a node name cannot carry", s)
	}
	return ip.Unmap().String(), nil
}

// defaultHost is the host part of a name that was not given: with long
// names the pod IP (given, else detected), with short names the host name up
// to its first dot, as erl -sname does.
func defaultHost(mode node.NameMode, podIP string, env environment) (string, error) {
	if mode == node.ShortNames {
		h, err := env.Hostname()
		if err != nil {
			return "", fmt.Errorf("the host name is unknown: %v", err)
		}
		h, _, _ = strings.Cut(h, ".")
		if h == "" {
			return "", errors.New("the host name is empty")
		}
		return h, nil
	}
	if podIP != "" {
		return podIP, nil
	}
	return detectPodIP(env.InterfaceAddrs), nil
}

// detectPodIP returns the first IPv4 address of the host that is neither
// loopback nor link-local, else 127.0.0.1.
func detectPodIP(addrs func() ([]net.Addr, error)) string {
	list, err := addrs()
	if err != nil {
		return "127.0.0.1"
	}
	for _, a := range list {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if ip4 := ip.To4(); ip4 != nil && !ip4.IsLoopback() && !ip4.IsLinkLocalUnicast() && !ip4.IsUnspecified() {
			return ip4.String()
		}
	}
	return "127.0.0.1"
}

// maxCookieFile bounds what is read of a cookie file; a cookie is at most
// 255 bytes, so a longer file is rejected by node.Config.Validate anyway.
const maxCookieFile = 4096

// fileMode is a file's path and permission bits.
type fileMode struct {
	Path string
	Mode os.FileMode
}

// readCookie reads the cookie from path, or from $HOME/.erlang.cookie when
// path is empty, as erl does, and returns the file's path and permission
// bits (those of the file a symbolic link points to, such as a Kubernetes
// Secret's). One trailing newline (LF or CRLF, repeated) is dropped. Errors
// name the file, never its content.
func readCookie(path string, env environment) (node.Cookie, fileMode, error) {
	if path == "" {
		home, _ := env.LookupEnv("HOME")
		if home == "" {
			return "", fileMode{}, errors.New("no cookie: set --cookie (RELEASE_COOKIE) or --cookie-file (GONODE_COOKIE_FILE); $HOME is unset, so $HOME/.erlang.cookie cannot be read")
		}
		path = filepath.Join(home, ".erlang.cookie")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fileMode{}, fmt.Errorf("no cookie: reading the cookie file: %w (set --cookie, RELEASE_COOKIE, --cookie-file or GONODE_COOKIE_FILE)", err)
	}
	defer f.Close()
	file := fileMode{Path: path}
	if st, err := f.Stat(); err == nil {
		file.Mode = st.Mode().Perm()
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCookieFile+1))
	if err != nil {
		return "", fileMode{}, fmt.Errorf("reading the cookie file %s: %w", path, err)
	}
	if len(b) > maxCookieFile {
		return "", fileMode{}, fmt.Errorf("the cookie file %s is longer than %d bytes", path, maxCookieFile)
	}
	ck := strings.TrimRight(string(b), "\r\n")
	if ck == "" {
		return "", fileMode{}, fmt.Errorf("the cookie file %s is empty", path)
	}
	return node.Cookie(ck), file, nil
}

// checkHostPort accepts host:port (host may be empty) with a port from min
// to 65535.
func checkHostPort(addr string, min int) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < min || p > 65535 {
		return fmt.Errorf("%q: the port must be a number from %d to 65535", addr, min)
	}
	return nil
}
