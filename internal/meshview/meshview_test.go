package meshview

import (
	"strings"
	"testing"
)

func TestFullMesh(t *testing.T) {
	out := `myapp@10.0.0.1 myapp@10.0.0.2 myapp@10.0.0.3 rpc-1234@10.0.0.1
myapp@10.0.0.2 myapp@10.0.0.3 myapp@10.0.0.1
myapp@10.0.0.3 myapp@10.0.0.1 myapp@10.0.0.2
`
	want := []string{"myapp@10.0.0.3", "myapp@10.0.0.1", "myapp@10.0.0.2"}
	if ok, state := Full(Parse(out, "myapp"), want, "pod"); !ok {
		t.Fatalf("a full mesh of 3 was not seen as one:\n%s", state)
	}
	// The third node lost its link to the first; a fourth node runs in no pod.
	out = `myapp@10.0.0.1 myapp@10.0.0.2 myapp@10.0.0.9
myapp@10.0.0.2 myapp@10.0.0.3 myapp@10.0.0.1
myapp@10.0.0.3 myapp@10.0.0.2
myapp@10.0.0.9 myapp@10.0.0.1
`
	ok, state := Full(Parse(out, "myapp"), want, "pod")
	for _, line := range []string{
		"myapp@10.0.0.1: peers [myapp@10.0.0.2 myapp@10.0.0.9], want [myapp@10.0.0.2 myapp@10.0.0.3]",
		"myapp@10.0.0.3: peers [myapp@10.0.0.2], want [myapp@10.0.0.1 myapp@10.0.0.2]",
		"myapp@10.0.0.9: connected but no running pod has it",
	} {
		if ok || !strings.Contains(state, line) {
			t.Errorf("ok=%v, state lacks %q:\n%s", ok, line, state)
		}
	}
	if ok, state := Full(Parse("", "myapp"), want[:1], "container"); ok || state != "myapp@10.0.0.3: not connected to the observer" {
		t.Errorf("an empty view: ok=%v, %q", ok, state)
	}
}
