package dist

import (
	"fmt"
	"math/bits"
	"strings"
)

// Flags is the 64-bit capability set exchanged in the distribution handshake
// (the DFLAG_* constants of OTP's erl_dist_protocol documentation).
type Flags uint64

// Distribution capability flags, named after OTP's DFLAG_* constants.
const (
	FlagPublished          Flags = 0x1
	FlagAtomCache          Flags = 0x2
	FlagExtendedReferences Flags = 0x4
	FlagDistMonitor        Flags = 0x8
	FlagFunTags            Flags = 0x10
	FlagDistMonitorName    Flags = 0x20
	FlagHiddenAtomCache    Flags = 0x40
	FlagNewFunTags         Flags = 0x80
	FlagExtendedPidsPorts  Flags = 0x100
	FlagExportPtrTag       Flags = 0x200
	FlagBitBinaries        Flags = 0x400
	FlagNewFloats          Flags = 0x800
	FlagUnicodeIO          Flags = 0x1000
	FlagDistHdrAtomCache   Flags = 0x2000
	FlagSmallAtomTags      Flags = 0x4000
	FlagETSCompressed      Flags = 0x8000
	FlagUTF8Atoms          Flags = 0x10000
	FlagMapTag             Flags = 0x20000
	FlagBigCreation        Flags = 0x40000
	FlagSendSender         Flags = 0x80000
	FlagBigSeqtraceLabels  Flags = 0x100000
	FlagPendingConnect     Flags = 0x200000
	FlagExitPayload        Flags = 0x400000
	FlagFragments          Flags = 0x800000
	FlagHandshake23        Flags = 0x1000000
	FlagUnlinkID           Flags = 0x2000000
	FlagMandatory25Digest  Flags = 0x4000000
	FlagSpawn              Flags = 1 << 32
	FlagNameMe             Flags = 1 << 33
	FlagV4NC               Flags = 1 << 34
	FlagAlias              Flags = 1 << 35
	// FlagLocalExt is used only inside a BEAM node; it never travels in a
	// handshake but is named so that Names can show it.
	FlagLocalExt Flags = 1 << 36
	// FlagAltactSig (OTP 28+) announces the ALTACT_SIG_SEND control message (37).
	FlagAltactSig Flags = 1 << 37
	// FlagNativeRecords (OTP 29+) announces native record terms.
	FlagNativeRecords Flags = 1 << 38
)

// FlagsMandatory25 are the flags OTP 25 and later require from every peer.
const FlagsMandatory25 = FlagExtendedReferences | FlagFunTags | FlagExtendedPidsPorts |
	FlagNewFunTags | FlagExportPtrTag | FlagBitBinaries | FlagNewFloats | FlagUTF8Atoms |
	FlagMapTag | FlagBigCreation | FlagHandshake23

// FlagsMandatory26 are the flags OTP 26 and later (through 29) require on top of FlagsMandatory25.
const FlagsMandatory26 = FlagV4NC | FlagUnlinkID

var flagNames = map[Flags]string{
	FlagPublished: "PUBLISHED", FlagAtomCache: "ATOM_CACHE", FlagExtendedReferences: "EXTENDED_REFERENCES",
	FlagDistMonitor: "DIST_MONITOR", FlagFunTags: "FUN_TAGS", FlagDistMonitorName: "DIST_MONITOR_NAME",
	FlagHiddenAtomCache: "HIDDEN_ATOM_CACHE", FlagNewFunTags: "NEW_FUN_TAGS",
	FlagExtendedPidsPorts: "EXTENDED_PIDS_PORTS", FlagExportPtrTag: "EXPORT_PTR_TAG",
	FlagBitBinaries: "BIT_BINARIES", FlagNewFloats: "NEW_FLOATS", FlagUnicodeIO: "UNICODE_IO",
	FlagDistHdrAtomCache: "DIST_HDR_ATOM_CACHE", FlagSmallAtomTags: "SMALL_ATOM_TAGS",
	FlagETSCompressed: "ETS_COMPRESSED", FlagUTF8Atoms: "UTF8_ATOMS", FlagMapTag: "MAP_TAG",
	FlagBigCreation: "BIG_CREATION", FlagSendSender: "SEND_SENDER", FlagBigSeqtraceLabels: "BIG_SEQTRACE_LABELS",
	FlagPendingConnect: "PENDING_CONNECT", FlagExitPayload: "EXIT_PAYLOAD", FlagFragments: "FRAGMENTS",
	FlagHandshake23: "HANDSHAKE_23", FlagUnlinkID: "UNLINK_ID", FlagMandatory25Digest: "MANDATORY_25_DIGEST",
	FlagSpawn: "SPAWN", FlagNameMe: "NAME_ME", FlagV4NC: "V4_NC", FlagAlias: "ALIAS",
	FlagLocalExt: "LOCAL_EXT", FlagAltactSig: "ALTACT_SIG", FlagNativeRecords: "NATIVE_RECORDS",
}

// Has reports whether every flag in want is set in f.
func (f Flags) Has(want Flags) bool { return f&want == want }

// Missing returns the flags of want that f lacks.
func (f Flags) Missing(want Flags) Flags { return want &^ f }

// Names lists the names of the set flags in ascending bit order; unknown bits
// are shown as BIT<n>.
func (f Flags) Names() []string {
	var out []string
	for v := uint64(f); v != 0; v &= v - 1 {
		bit := Flags(1) << bits.TrailingZeros64(v)
		if name, ok := flagNames[bit]; ok {
			out = append(out, name)
		} else {
			out = append(out, fmt.Sprintf("BIT%d", bits.TrailingZeros64(v)))
		}
	}
	return out
}

// String renders the set flags as a |-separated list of names.
func (f Flags) String() string { return strings.Join(f.Names(), "|") }
