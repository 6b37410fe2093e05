package main

// The results of one run, as written to bench/results/latest.json and read
// by the chart program (bench/plot, which mirrors the fields it draws).

// Results is one whole run of the suite.
type Results struct {
	Date        string  `json:"date"` // UTC, RFC 3339
	Commit      string  `json:"commit"`
	Dirty       bool    `json:"dirty"` // the work tree had changes
	GoVersion   string  `json:"go_version"`
	CPU         string  `json:"cpu"`
	NumCPU      int     `json:"num_cpu"`
	Mode        string  `json:"mode"` // "full" or "quick"
	Rounds      int     `json:"rounds"`
	CellSeconds float64 `json:"cell_seconds"` // one measurement of one call cell
	LoadStart   float64 `json:"load_start"`
	LoadEnd     float64 `json:"load_end"`
	MaxLoad     float64 `json:"max_load"`
	Publishable bool    `json:"publishable"`
	// NotPublishable says why a run forced out with -allow-busy is not.
	NotPublishable []string         `json:"not_publishable,omitempty"`
	WallSeconds    float64          `json:"wall_seconds"`
	Releases       []ReleaseResults `json:"releases"`
	Memory         *MemoryResults   `json:"memory,omitempty"`
}

// ReleaseResults are the cells measured against one OTP release.
type ReleaseResults struct {
	Name       string           `json:"name"` // otp25, otp27, otp29
	OTP        string           `json:"otp"`  // full OTP version, e.g. 25.2.3
	Elixir     string           `json:"elixir"`
	Calls      []CallCell       `json:"calls"`
	Throughput []ThroughputCell `json:"throughput"`
}

// The four call paths of a call cell.
const (
	PathElixirToGo   = "elixir_to_go"    // Elixir callers -> genserver.Server echo
	PathElixirToBEAM = "elixir_to_beam"  // Elixir callers -> Elixir GenServer echo (the baseline)
	PathProcessCall  = "go_process_call" // genserver Process.Call from long-lived processes -> BEAM echo
	PathNodeCall     = "go_node_call"    // Node.Call (a process per call) -> BEAM echo
)

// Paths lists the call paths in the order of the tables.
var Paths = []string{PathElixirToGo, PathElixirToBEAM, PathProcessCall, PathNodeCall}

// CallCell is one term size and number of concurrent callers.
type CallCell struct {
	Size    string               `json:"size"` // small, 1KiB, 64KiB
	Callers int                  `json:"callers"`
	Paths   map[string]CallStats `json:"paths"`
}

// CallStats is one call path of a cell, over all rounds.
type CallStats struct {
	Calls       int64   `json:"calls"`
	CallsPerSec float64 `json:"calls_per_sec"`
	// Latency percentiles of one call as its caller timed it, microseconds:
	// the median over the rounds of each round's percentile.
	P50 float64 `json:"p50_us"`
	P90 float64 `json:"p90_us"`
	P99 float64 `json:"p99_us"`
	// CPU time (user+system, microseconds) and context switches per call of
	// the server's and the callers' operating system processes.
	ServerCPU float64 `json:"server_cpu_us_per_call"`
	CallerCPU float64 `json:"caller_cpu_us_per_call"`
	ServerCS  float64 `json:"server_cs_per_call"`
	CallerCS  float64 `json:"caller_cs_per_call"`
}

// ThroughputCell is one term size of the one-way message cells.
type ThroughputCell struct {
	Size     string `json:"size"`
	Messages int    `json:"messages"`
	// BEAMToBEAM is the baseline of both directions.
	BEAMToBEAM MsgStats `json:"beam_to_beam"`
	BEAMToGo   MsgStats `json:"beam_to_go"`
	GoToBEAM   MsgStats `json:"go_to_beam"`
}

// MsgStats is one direction: the rate timed on the sender until the
// receiver reported the last message, and CPU (microseconds) and context
// switches per message of the receiving and the sending process.
type MsgStats struct {
	MsgPerSec float64 `json:"msg_per_sec"`
	RxCPU     float64 `json:"rx_cpu_us_per_msg"`
	TxCPU     float64 `json:"tx_cpu_us_per_msg"`
	RxCS      float64 `json:"rx_cs_per_msg"`
	TxCS      float64 `json:"tx_cs_per_msg"`
}

// MemoryResults compare a gonode node with a BEAM (erl) node, both fresh.
type MemoryResults struct {
	Release string `json:"release"` // the BEAM side's
	Servers int    `json:"servers"` // idle registered gen_servers started
	Peers   int    `json:"peers"`   // peers connected
	// Resident set sizes and per-item increments, bytes.
	GoIdleRSS     int64   `json:"go_idle_rss"`
	BEAMIdleRSS   int64   `json:"beam_idle_rss"`
	GoPerServer   float64 `json:"go_per_server"`
	BEAMPerServer float64 `json:"beam_per_server"`
	GoPerPeer     float64 `json:"go_per_peer"`
	BEAMPerPeer   float64 `json:"beam_per_peer"`
	// Worked servers (of the Servers) then each handled 65,536 messages;
	// the increase of the resident set per such server, idle again.
	Worked              int     `json:"worked"`
	GoPerWorkedServer   float64 `json:"go_per_worked_server"`
	BEAMPerWorkedServer float64 `json:"beam_per_worked_server"`
	// The Go node's heap (live objects and goroutine stacks after a
	// collection): memory the Go runtime holds for the node whether or not
	// the pages are resident yet (a preallocated mailbox is untouched, so
	// it is in the heap, not yet in the RSS).
	GoIdleHeap      int64   `json:"go_idle_heap"`
	GoHeapPerServer float64 `json:"go_heap_per_server"`
	GoHeapPerPeer   float64 `json:"go_heap_per_peer"`
}
