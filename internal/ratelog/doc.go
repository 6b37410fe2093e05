// Package ratelog rate-limits log lines that peers or the network trigger,
// so that a flood of bad connections, failed connects or refused requests
// cannot flood the log, and truncates untrusted strings before they are
// logged.
//
// A Limiter writes the first Config.Burst lines of each key (a source
// address, a peer name) per Config.Every, and at most Config.Total lines of
// all keys together per Every; it counts the rest. The next line written for
// a key carries suppressed=N, the lines of that key held back since its last
// written line. Lines held back by the overall limit, and the pending counts
// of keys pushed out of the bounded key table, are reported by one summary
// line, "log lines suppressed by the rate limit" with suppressed=N, written
// before the first line of the next interval; Flush (at shutdown) writes it
// at once, with every count still pending:
//
//	lim := ratelog.New(log, ratelog.Config{Burst: 3, Every: time.Minute})
//	lim.Warn(addr, "EPMD connection refused: too many connections", "peer", addr)
//
// Metrics count every event; the log is a sample of them. Callers keep their
// counters exact and only route the log line through the Limiter.
//
// # Design
//
// Intervals are fixed windows that start at a key's first line after the
// previous window ended; there is no background goroutine. The key table
// holds at most Config.MaxKeys keys, least recently used first out, so a
// flood of distinct keys (every source port, every name in a DNS answer)
// costs bounded memory; the overall limit is what bounds the lines such a
// flood writes. Time comes from a Clock (WithClock), so tests step it.
//
// # Imports
//
// ratelog imports only the standard library, so that every package may use
// it, the stdlib-only leaf epmd and discovery (which must not import ergo or
// prometheus) included.
package ratelog
