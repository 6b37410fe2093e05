package node_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/node"
)

// The built-in gonode server's {call, To, Msg} fails with the reason
// gen_server:call itself exits with, made on the Erlang side for the same
// target, as a term: never a string.
func TestProxyAnswersGenServerCallReasons(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		startGo(t, goName, node.Cookie(cookie))
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
		stranger := beamtest.Start(t, rel, beamtest.Options{Name: uniq("stranger") + "@127.0.0.1", Cookie: beamtest.RandomCookie()})
		absent := uniq("absent") + "@127.0.0.1"

		// Each case makes a fresh target (a callee that ends on the call
		// ends for good) for gen_server:call and one for the proxy; the
		// result lists, per case, gen_server:call's exit reason and the
		// proxy's answer.
		got := erl.Eval(t, fmt.Sprintf(`G = {gonode, '%s'},
			Exits = fun(R) -> fun() -> spawn(fun() -> receive _ -> exit(R) end end) end end,
			Cases = [
				fun() -> {nobody, node()} end,
				fun() -> {nobody, '%s'} end,
				fun() -> {nobody, '%s'} end,
				fun() -> {nobody, '%s'} end,
				fun() -> spawn(fun() -> receive _ -> timer:sleep(infinity) end end) end,
				Exits({shutdown, #{at => 1}}),
				Exits(normal),
				Exits(<<"a binary reason">>),
				fun() -> spawn(fun() -> receive _ -> exit(self(), kill) end end) end
			],
			[begin
				{'EXIT', {R, _}} = (catch gen_server:call(Mk(), hi, 300)),
				{R, gen_server:call(G, {call, Mk(), hi, 300}, 10000)}
			 end || Mk <- Cases].`, goName, goName, absent, stranger.Name))
		want := fmt.Sprintf(`[{noproc,{error,noproc}},`+
			`{noproc,{error,noproc}},`+
			`{{nodedown,'%[1]s'},{error,{nodedown,'%[1]s'}}},`+
			`{{nodedown,'%[2]s'},{error,{nodedown,'%[2]s'}}},`+
			`{timeout,{error,timeout}},`+
			`{{shutdown,#{at => 1}},{error,{shutdown,#{at => 1}}}},`+
			`{normal,{error,normal}},`+
			`{<<"a binary reason">>,{error,<<"a binary reason">>}},`+
			`{killed,{error,killed}}]`, absent, stranger.Name)
		if compact(got) != compact(want) {
			t.Errorf("{gen_server:call exit reason, proxy answer} per case:\n got %s\nwant %s", got, want)
		}

		// A target or a timeout that is not one: badarg, not a text.
		got = erl.Eval(t, fmt.Sprintf(`G = {gonode, '%s'},
			{gen_server:call(G, {call, 123, hi}), gen_server:call(G, {call, {echo, node()}, hi, -1})}.`, goName))
		if compact(got) != "{{error,badarg},{error,badarg}}" {
			t.Errorf("bad target and bad timeout = %s, want {{error,badarg},{error,badarg}}", got)
		}
	})
}

// compact drops the white space of Erlang's pretty-printed output.
func compact(s string) string {
	return strings.Join(strings.Fields(s), "")
}
