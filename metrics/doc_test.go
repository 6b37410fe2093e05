package metrics_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestDocsListEveryMetric checks docs/metrics.md against the registry: every
// gonode metric is in the table with its type and labels, the table names no
// metric the code lacks, and every help text is one sentence.
func TestDocsListEveryMetric(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(gonode_[a-z_]+)` \\| (counter|gauge|histogram) \\| ([^|]*) \\|")
	documented := map[string][]string{} // name -> type, labels cell
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = []string{m[2], m[3]}
	}
	reg, m := newMetrics(t)
	// A metric served only while its source says so (the certificate
	// expiry, with TLS) is exported all the same.
	m.SetTLSSource(tlsSource{notAfter: time.Unix(1_900_000_000, 0), on: true})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "gonode_") {
			continue
		}
		seen[name] = true
		d, ok := documented[name]
		if !ok {
			t.Errorf("%s is not in the table of docs/metrics.md", name)
			continue
		}
		if want := strings.ToLower(mf.GetType().String()); d[0] != want {
			t.Errorf("docs/metrics.md says %s is a %s, the code makes a %s", name, d[0], want)
		}
		for _, l := range labelNames(mf) {
			if !strings.Contains(d[1], "`"+l+"`") {
				t.Errorf("docs/metrics.md does not name label %s of %s", l, name)
			}
		}
		help := mf.GetHelp()
		if !strings.HasSuffix(help, ".") || strings.Count(help, ". ") > 0 {
			t.Errorf("help of %s is not one sentence: %q", name, help)
		}
	}
	for name := range documented {
		if !seen[name] {
			t.Errorf("docs/metrics.md lists %s, which the code does not export", name)
		}
	}
	if len(seen) != len(gonodeMetrics) {
		t.Errorf("the registry exports %d gonode metrics, the tests know %d", len(seen), len(gonodeMetrics))
	}
}

func labelNames(mf *dto.MetricFamily) []string {
	var out []string
	if len(mf.GetMetric()) == 0 {
		return nil
	}
	for _, l := range mf.GetMetric()[0].GetLabel() {
		out = append(out, l.GetName())
	}
	return out
}
