package node_test

import (
	"errors"
	"testing"

	"github.com/gonode/gonode/node"
)

// An empty cookie is reported as ErrEmptyCookie, one problem among the
// others, each wrapping ErrInvalidConfig; a cookie that is set is not.
func TestValidateEmptyCookie(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Name = "a@127.0.0.1"
	tests := []struct {
		name   string
		cookie node.Cookie
		port   int
		empty  bool
	}{
		{"empty cookie", "", 4369, true},
		{"empty cookie and a bad port", "", 0, true},
		{"cookie set, bad port", "c", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.Cookie, c.EPMDPort = tt.cookie, tt.port
			err := c.Validate()
			if !errors.Is(err, node.ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrInvalidConfig", err)
			}
			if got := errors.Is(err, node.ErrEmptyCookie); got != tt.empty {
				t.Errorf("errors.Is(%v, ErrEmptyCookie) = %v, want %v", err, got, tt.empty)
			}
		})
	}
}
