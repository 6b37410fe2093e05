package epmd

import "github.com/gonode/gonode/internal/ratelog"

// WithLogClock sets the clock of the Server's log rate limit, so tests step
// its intervals.
func WithLogClock(c ratelog.Clock) Option {
	return func(s *Server) { s.clock = c }
}
