package beamtest

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// ReadReplies reads the standard output of a control loop that answers
// requests in frames: a header line "<marker> <id> <field>... <size>"
// followed by size bytes of payload and a newline. It calls reply with the
// id, the fields between the id and the size (none for beamtest's own loop)
// and the payload, and other with every line that is not a header (what the
// node printed by itself, with its newline). It returns when r ends or a
// payload is cut short.
//
// Start's nodes use it with the marker "@@BT"; test/integration's Elixir
// pods, whose loop adds a status field, with their own marker.
func ReadReplies(r io.Reader, marker string, reply func(id string, fields []string, payload string), other func(line string)) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if f := strings.Fields(line); len(f) >= 3 && f[0] == marker {
			if size, convErr := strconv.Atoi(f[len(f)-1]); convErr == nil && size >= 0 {
				buf := make([]byte, size+1) // the payload and its newline
				if _, err := io.ReadFull(br, buf); err != nil {
					return
				}
				reply(f[1], f[2:len(f)-1], string(buf[:size]))
				continue
			}
		}
		if line != "" {
			other(line)
		}
		if err != nil {
			return
		}
	}
}
