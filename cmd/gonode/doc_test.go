package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the flag table")

// docPath is docs/configuration.md, relative to this package's directory
// (go test runs in it).
var docPath = filepath.Join("..", "..", "docs", "configuration.md")

// TestConfigurationDoc checks that docs/configuration.md is exactly what
// `gonode --help-markdown` prints, so the doc never drifts from the table.
func TestConfigurationDoc(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--help-markdown"}, testEnv(nil), &out, &errOut); code != exitOK {
		t.Fatalf("--help-markdown exited %d: %s", code, errOut.String())
	}
	if *update {
		if err := os.WriteFile(docPath, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/gonode -run TestConfigurationDoc -update)", err)
	}
	if !bytes.Equal(have, out.Bytes()) {
		t.Fatalf("%s is out of date: run go test ./cmd/gonode -run TestConfigurationDoc -update", docPath)
	}
	doc := out.String()
	for _, o := range options() {
		row := "| `--" + o.name + "` | `" + o.env + "` |"
		if !strings.Contains(doc, row) {
			t.Errorf("the doc has no row for --%s with %s", o.name, o.env)
		}
		if o.libcluster != "" && !strings.Contains(doc, "`"+o.libcluster+"`") {
			t.Errorf("the doc does not name libcluster's %s for --%s", o.libcluster, o.name)
		}
	}
}
