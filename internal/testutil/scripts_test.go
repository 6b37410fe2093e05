package testutil

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// The project's scripts run on users' machines and in CI as root: they may
// stop only what they started themselves (by pid), never a daemon or a
// process of the machine's found by name (a user's own dnsmasq, say).
func TestScriptsStopOnlyWhatTheyStarted(t *testing.T) {
	byName := regexp.MustCompile(`(?m)^[^#\n]*\b(pkill|killall)\b|^[^#\n]*\bsystemctl\s+(stop|disable|kill|mask)\b|^[^#\n]*\bservice\s+\S+\s+stop\b`)
	scripts, err := filepath.Glob("../../scripts/*.sh")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts found (%v)", err)
	}
	for _, p := range scripts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range byName.FindAll(b, -1) {
			t.Errorf("%s stops processes it did not start: %s", p, m)
		}
	}
}
