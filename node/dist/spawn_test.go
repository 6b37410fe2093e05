package dist

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/node/term"
)

// fakeSpawner records the requests it gets and answers per module.
type fakeSpawner struct {
	reqs  chan SpawnRequest
	exits chan SpawnExit
}

var spawnedPid = etf.Pid{Node: ptLocal, ID: 4242, Creation: 3}

func (s *fakeSpawner) Spawn(req SpawnRequest) (Spawned, error) {
	s.reqs <- req
	switch req.Module {
	case "refuse":
		return Spawned{}, &SpawnError{Reason: "badarg"}
	case "broken":
		return Spawned{}, errors.New("out of something")
	case "ergo":
		return Spawned{}, ErrSpawnNotHandled
	}
	return Spawned{Pid: spawnedPid, Start: func(exit SpawnExit) { s.exits <- exit }}, nil
}

func spawnRequestFrame(t *testing.T, module string, opts etf.List, args etf.List) []byte {
	mfa := etf.Tuple{etf.Atom(module), etf.Atom("execute_call"), int64(len(args))}
	gl := etf.Pid{Node: ptRemote, ID: 5, Creation: 9}
	return ptPassThrough(t, etf.Tuple{int64(opSpawnRequest), ptRef, ptRemotePid, gl, mfa, opts}, args)
}

func TestConnSpawnHook(t *testing.T) {
	reason := etf.Tuple{ptRef, etf.Atom("return"), term.Map{{Key: []byte("k"), Value: int64(1)}}}
	tests := []struct {
		name    string
		flags   Flags
		module  string
		opts    etf.List
		reply   etf.Term // the SPAWN_REPLY result
		flagsIn int64    // the SPAWN_REPLY flags
		want    []string // control messages after the reply, formatted
	}{
		{name: "monitor, exit payload", flags: ptFlags(), module: "erpc",
			opts:  etf.List{etf.Tuple{etf.Atom("reply"), etf.Atom("error_only")}, etf.Atom("monitor")},
			reply: spawnedPid, flagsIn: spawnFlagMonitor,
			want: []string{fmt.Sprint(etf.Tuple{int64(opPayloadMonitorPExit), spawnedPid, ptRemotePid, ptRef})}},
		{name: "monitor and link, exit payload", flags: ptFlags(), module: "erpc",
			opts:  etf.List{etf.Tuple{etf.Atom("monitor"), etf.List{}}, etf.Atom("link")},
			reply: spawnedPid, flagsIn: spawnFlagMonitor | spawnFlagLink,
			want: []string{fmt.Sprint(etf.Tuple{int64(opPayloadMonitorPExit), spawnedPid, ptRemotePid, ptRef}),
				fmt.Sprint(etf.Tuple{int64(opPayloadExit), spawnedPid, ptRemotePid})}},
		{name: "monitor without exit payload", flags: ptFlags() &^ FlagExitPayload, module: "erpc",
			opts: etf.List{etf.Atom("monitor")}, reply: spawnedPid, flagsIn: spawnFlagMonitor,
			want: []string{fmt.Sprint(etf.Tuple{int64(opMonitorPExit), spawnedPid, ptRemotePid, ptRef, reason})}},
		{name: "neither", flags: ptFlags(), module: "erpc", opts: etf.List{}, reply: spawnedPid},
		{name: "refused", flags: ptFlags(), module: "refuse", opts: etf.List{etf.Atom("monitor")}, reply: etf.Atom("badarg")},
		{name: "failed", flags: ptFlags(), module: "broken", opts: etf.List{}, reply: etf.Atom("system_limit")},
		{name: "left to ergo", flags: ptFlags(), module: "ergo", opts: etf.List{}, reply: etf.Atom("notsup")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := &fakeSpawner{reqs: make(chan SpawnRequest, 1), exits: make(chan SpawnExit, 1)}
			cfg := DefaultProtoConfig()
			cfg.Spawner = sp
			h := ptStart(t, cfg, tc.flags)
			args := etf.List{ptRef, etf.Atom("m"), etf.Atom("f"), etf.List{int64(1)}}
			h.write(t, spawnRequestFrame(t, tc.module, tc.opts, args))
			req := <-sp.reqs
			if req.Peer != ptRemote || req.From != ptRemotePid || req.Ref != ptRef || req.Module != etf.Atom(tc.module) ||
				req.Function != "execute_call" || len(req.Args) != 4 || req.GroupLeader.ID != 5 {
				t.Fatalf("spawner got %+v", req)
			}
			if tc.module == "ergo" {
				if call := h.router.next(t); call.op != "SpawnRequest" {
					t.Fatalf("router got %v, want the spawn request", call)
				}
			}
			ctrl, _ := h.nextMessage(t)
			want := fmt.Sprint(etf.Tuple{int64(opSpawnReply), ptRef, ptRemotePid, tc.flagsIn, tc.reply})
			if fmt.Sprint(ctrl) != want {
				t.Fatalf("reply %v, want %s", ctrl, want)
			}
			if _, ok := tc.reply.(etf.Pid); !ok {
				return
			}
			exit := <-sp.exits
			if err := exit(etf.Tuple{etf.Atom("bad"), make(chan int)}); len(tc.want) > 0 && !errors.Is(err, term.ErrUnsupportedType) {
				t.Fatalf("exit with an unencodable reason: %v", err)
			}
			if len(tc.want) == 0 {
				return // neither monitored nor linked: the exit has nobody to tell
			}
			if err := exit(reason); err != nil {
				t.Fatal(err)
			}
			if err := exit(reason); !errors.Is(err, ErrSpawnExitSent) {
				t.Fatalf("second exit: %v, want ErrSpawnExitSent", err)
			}
			for _, w := range tc.want {
				ctrl, payload := h.nextMessage(t)
				if fmt.Sprint(ctrl) != w {
					t.Fatalf("sent %v, want %s", ctrl, w)
				}
				if payload != nil && !term.Equal(payload, reason) {
					t.Fatalf("reason %s, want %s", term.Format(payload), term.Format(reason))
				}
			}
			// Nothing else was sent: a ping from the peer is the next thing routed,
			// and the connection wrote nothing more than ticks meanwhile.
			h.write(t, ptPassThrough(t, etf.Tuple{int64(opLink), ptRemotePid, spawnedPid}))
			if call := h.router.next(t); call.op != "Link" {
				t.Fatalf("router got %v", call)
			}
			select {
			case b := <-h.frames:
				if len(b) != 0 {
					t.Fatalf("unexpected frame after the exit: %v", b)
				}
			default:
			}
		})
	}
}
