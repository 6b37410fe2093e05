package genserver

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"strings"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/node/term"
)

// EnvLogger is the process environment key (gen.ProcessOptions.Env) of the
// *slog.Logger a Server logs its crashes to: a panic in a callback, a reply
// that cannot be encoded. package node sets it to the node's logger for the
// servers it spawns; without it a Server logs to slog.Default().
const EnvLogger gen.EnvKey = "gonode.genserver.logger"

// ErrBadReply is the error a reply that cannot be encoded for the caller's
// node wraps (in the log line; the process ends with {bad_reply, Text}).
var ErrBadReply = errors.New("genserver: cannot encode reply")

// processLogger is the logger of EnvLogger, or slog.Default().
func processLogger(p gen.Process) *slog.Logger {
	if l, ok := p.Env(EnvLogger).(*slog.Logger); ok && l != nil {
		return l
	}
	return slog.Default()
}

// crashed logs a callback's panic with its stack, once, and returns the exit
// reason that carries its value: {panic, <<"value">>} in Erlang syntax, so
// links and monitors (an Elixir caller's GenServer.call) see it.
func (sp *Process) crashed(callback string, v any) string {
	text := fmt.Sprint(v)
	sp.log.Error("genserver: callback panicked; the process exits",
		"process", sp.Name(), "pid", sp.Self().String(), "callback", callback,
		"panic", text, "stack", string(debug.Stack()))
	return term.Format(etf.Tuple{etf.Atom("panic"), []byte(text)})
}

// badReply logs a HandleCall reply the caller's node cannot be sent (a Go
// value the term codec does not encode: a map[string]int, a struct, a chan)
// and returns the exit reason {bad_reply, <<"server: ... Go type ...">>}: the
// caller's monitor sees it at once instead of waiting for its timeout.
func (sp *Process) badReply(reply etf.Term, err error) string {
	name := sp.Name()
	if name == "" {
		name = sp.Self().String()
	}
	text := fmt.Sprintf("%s: cannot encode reply of Go type %T: %v", name, reply, err)
	sp.log.Error("genserver: reply cannot be encoded; the process exits (return terms, or convert with term.Marshal)",
		"process", sp.Name(), "pid", sp.Self().String(), "type", fmt.Sprintf("%T", reply), "err", err)
	return term.Format(etf.Tuple{etf.Atom("bad_reply"), []byte(text)})
}

// unencodable reports an error of the term codec about the value itself
// (not about the connection).
func unencodable(err error) bool {
	return errors.Is(err, term.ErrUnsupportedType) || errors.Is(err, term.ErrInvalidTerm)
}

var behaviorType = reflect.TypeFor[Behavior]()

// CheckBehavior reports why v is not a Behavior, naming each callback whose
// signature differs from Behavior's and the signature expected (a callback
// written with ergo's gen.Server signature compiles, as it hides the one
// Server provides, and leaves the type without that callback). It returns nil
// for a Behavior.
func CheckBehavior(v any) error {
	if _, ok := v.(Behavior); ok {
		return nil
	}
	t := reflect.TypeOf(v)
	if t == nil {
		return fmt.Errorf("%w: nil", ErrNotBehavior)
	}
	var problems []string
	for i := range behaviorType.NumMethod() {
		want := behaviorType.Method(i)
		got, ok := t.MethodByName(want.Name)
		expected := signature(want.Name, want.Type, false)
		switch {
		case !ok && t.Kind() != reflect.Pointer:
			if _, ok := reflect.PointerTo(t).MethodByName(want.Name); ok {
				problems = append(problems, fmt.Sprintf("method %s has a pointer receiver: pass a *%v", want.Name, t))
				continue
			}
			problems = append(problems, fmt.Sprintf("method %s is missing (want %s; embed genserver.Server)", want.Name, expected))
		case !ok:
			problems = append(problems, fmt.Sprintf("method %s is missing (want %s; embed genserver.Server)", want.Name, expected))
		case got.Type.NumIn() == want.Type.NumIn()+1 && funcShapeEqual(got.Type, want.Type):
			// the same signature (a receiver more).
		default:
			problems = append(problems, fmt.Sprintf("method %s has signature %s, want %s",
				want.Name, signature(want.Name, got.Type, true), expected))
		}
	}
	if len(problems) == 0 {
		// Should not happen: a type with every method is a Behavior.
		return fmt.Errorf("%w: %T", ErrNotBehavior, v)
	}
	return fmt.Errorf("%w: %T: %s", ErrNotBehavior, v, strings.Join(problems, "; "))
}

// funcShapeEqual compares a method's type (receiver first) with an
// interface method's type (no receiver).
func funcShapeEqual(method, iface reflect.Type) bool {
	if method.NumOut() != iface.NumOut() || method.IsVariadic() != iface.IsVariadic() {
		return false
	}
	for i := range iface.NumIn() {
		if method.In(i+1) != iface.In(i) {
			return false
		}
	}
	for i := range iface.NumOut() {
		if method.Out(i) != iface.Out(i) {
			return false
		}
	}
	return true
}

// signature writes a method type as Go source: HandleCall(*genserver.Process,
// gen.ServerFrom, etf.Term) (etf.Term, gen.ServerStatus).
func signature(name string, t reflect.Type, hasReceiver bool) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('(')
	first := 0
	if hasReceiver {
		first = 1
	}
	for i := first; i < t.NumIn(); i++ {
		if i > first {
			b.WriteString(", ")
		}
		if t.IsVariadic() && i == t.NumIn()-1 {
			b.WriteString("..." + t.In(i).Elem().String())
			continue
		}
		b.WriteString(t.In(i).String())
	}
	b.WriteByte(')')
	switch t.NumOut() {
	case 0:
	case 1:
		b.WriteString(" " + t.Out(0).String())
	default:
		outs := make([]string, t.NumOut())
		for i := range outs {
			outs[i] = t.Out(i).String()
		}
		b.WriteString(" (" + strings.Join(outs, ", ") + ")")
	}
	return b.String()
}
