package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
)

// stuck handles nothing until released, so its mailbox fills.
type stuck struct {
	gen.Server
	release chan struct{}
}

func (s *stuck) HandleInfo(*gen.ServerProcess, etf.Term) gen.ServerStatus {
	<-s.release
	return gen.ServerStatusOK
}

// The binary opts in to the routing of ergo's warnings (node.WithErgoLogs):
// a message dropped between two local processes, which only ergo sees, is
// in gonode's own JSON log with component=ergo. ergo writes its warning
// before its send returns, so the line is there once a send failed.
func TestRunRoutesErgoLogs(t *testing.T) {
	r := startRun(t, []string{"--pod-ip=127.0.0.1", "--metrics-addr=", "--mailbox-size=2"},
		map[string]string{"RELEASE_COOKIE": "ergo-logs-test"})
	s := r.waitStarted(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	target, err := s.Node.RegisterServer("ergo_logs_probe", &stuck{release: release})
	if err != nil {
		t.Fatal(err)
	}
	sender, err := s.Node.RegisterServer("", &stuck{release: release})
	if err != nil {
		t.Fatal(err)
	}
	full := false
	for i := 0; i < 10 && !full; i++ {
		full = errors.Is(sender.Send(target.Self(), etf.Atom("m")), lib.ErrProcessMailboxFull)
	}
	if !full {
		t.Fatal("no send met a full mailbox of 2 in 10 sends to a blocked process")
	}
	out := r.out.String()
	for _, want := range []string{`"msg":"mailbox full: message dropped"`, `"component":"ergo"`, `"process":"ergo_logs_probe"`} {
		if !strings.Contains(out, want) {
			t.Errorf("gonode's log has no %s:\n%s", want, out)
		}
	}
}
