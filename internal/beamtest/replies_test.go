package beamtest

import (
	"reflect"
	"strings"
	"testing"
)

func TestReadReplies(t *testing.T) {
	type reply struct {
		id      string
		fields  []string
		payload string
	}
	tests := []struct {
		name    string
		in      string
		replies []reply
		other   []string
	}{
		{name: "a frame between printed lines",
			in:      "booting\n@@BT 1 2\nok\nlater\n",
			replies: []reply{{"1", []string{}, "ok"}}, other: []string{"booting\n", "later\n"}},
		{name: "a payload of several lines, and a status field",
			in:      "@@BT 7 error 9\nline\nline\n@@BT 8 ok 0\n\n",
			replies: []reply{{"7", []string{"error"}, "line\nline"}, {"8", []string{"ok"}, ""}}},
		{name: "another marker is printed output",
			in: "@@IT 1 2\nok\n", other: []string{"@@IT 1 2\n", "ok\n"}},
		{name: "a header whose size is no number is printed output",
			in: "@@BT 1 x\n", other: []string{"@@BT 1 x\n"}},
		{name: "a cut payload ends the reading",
			in: "@@BT 1 10\nshort\n"},
		{name: "a last line without newline is kept",
			in: "bye", other: []string{"bye"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var replies []reply
			var other []string
			ReadReplies(strings.NewReader(tc.in), "@@BT",
				func(id string, fields []string, payload string) {
					replies = append(replies, reply{id, append([]string{}, fields...), payload})
				},
				func(line string) { other = append(other, line) })
			if !reflect.DeepEqual(replies, tc.replies) {
				t.Errorf("replies = %q, want %q", replies, tc.replies)
			}
			if !reflect.DeepEqual(other, tc.other) {
				t.Errorf("other = %q, want %q", other, tc.other)
			}
		})
	}
}
