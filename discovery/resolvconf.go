package discovery

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// ResolvConf is what the resolver takes from resolv.conf(5).
type ResolvConf struct {
	// Nameservers as host:port. Default 127.0.0.1:53 (glibc's) when the file
	// names none.
	Nameservers []string
	// Search is the search list ("search" or "domain", the last one wins).
	Search []string
	// Ndots: a name with at least this many dots is tried as is before the
	// search list. Default 1, at most 15.
	Ndots int
	// Timeout is how long to wait for one server's reply. Default 5s, at most 30s.
	Timeout time.Duration
	// Attempts is how many rounds over the nameservers to make. Default 2, at most 5.
	Attempts int
	// Rotate spreads queries over the nameservers round robin.
	Rotate bool
}

// resolv.conf defaults and caps, glibc's (resolv.conf(5)).
const (
	defaultNdots    = 1
	maxNdots        = 15
	defaultTimeout  = 5 * time.Second
	maxTimeout      = 30 * time.Second
	defaultAttempts = 2
	maxAttempts     = 5
	maxLineBytes    = 4096
)

// DefaultResolvConfValues returns glibc's defaults with no nameserver.
func DefaultResolvConfValues() ResolvConf {
	return ResolvConf{Ndots: defaultNdots, Timeout: defaultTimeout, Attempts: defaultAttempts}
}

// ErrResolvConf wraps problems reading resolv.conf.
var ErrResolvConf = errors.New("bad resolv.conf")

// ReadResolvConf reads and parses the file at path.
func ReadResolvConf(path string) (ResolvConf, error) {
	f, err := os.Open(path)
	if err != nil {
		return ResolvConf{}, fmt.Errorf("%w: %w", ErrResolvConf, err)
	}
	defer f.Close()
	return ParseResolvConf(f)
}

// ParseResolvConf parses resolv.conf text. Unknown keywords and options are
// ignored, as libc does; a nameserver that is not an IP address is an error.
func ParseResolvConf(r io.Reader) (ResolvConf, error) {
	rc := DefaultResolvConfValues()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexAny(text, "#;"); i >= 0 {
			text = text[:i]
		}
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 {
				return ResolvConf{}, fmt.Errorf("%w: line %d: nameserver without an address", ErrResolvConf, line)
			}
			ip, err := netip.ParseAddr(f[1])
			if err != nil {
				return ResolvConf{}, fmt.Errorf("%w: line %d: nameserver %q: %w", ErrResolvConf, line, f[1], err)
			}
			rc.Nameservers = append(rc.Nameservers, net.JoinHostPort(ip.String(), "53"))
		case "domain":
			if len(f) >= 2 {
				rc.Search = []string{fqdn(f[1])}
			}
		case "search":
			rc.Search = rc.Search[:0:0]
			for _, d := range f[1:] {
				if d != "." {
					rc.Search = append(rc.Search, fqdn(d))
				}
			}
		case "options":
			for _, o := range f[1:] {
				key, val, _ := strings.Cut(o, ":")
				n, nerr := strconv.Atoi(val)
				switch key {
				case "ndots":
					if nerr == nil && n >= 0 {
						rc.Ndots = min(n, maxNdots)
					}
				case "timeout":
					if nerr == nil && n >= 1 {
						rc.Timeout = min(time.Duration(n)*time.Second, maxTimeout)
					}
				case "attempts":
					if nerr == nil && n >= 1 {
						rc.Attempts = min(n, maxAttempts)
					}
				case "rotate":
					rc.Rotate = true
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return ResolvConf{}, fmt.Errorf("%w: line %d: %w", ErrResolvConf, line+1, err)
	}
	return rc, nil
}

// fqdn returns name with exactly one trailing dot, lower-cased.
func fqdn(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".")) + "."
}
