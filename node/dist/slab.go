package dist

import (
	"runtime"
	"sync"
	"unsafe"
)

// Slabs of readSlab bytes are recycled: when the garbage collector finds
// that nothing references a slab any more (no message still holds a binary
// in it), a finalizer puts it in slabPool, and the next reader that needs
// a slab reads into that memory again instead of a fresh allocation, which
// Go zeroes and the kernel faults in page by page, and it makes fewer
// garbage collections. Fresh memory per message is most of why receiving
// 64 KiB messages cost the Go receiver 2-3x the BEAM's CPU (BENCHMARKS.md,
// "Third pass"). A slab left in the pool goes
// back to the collector after two collections, as anything in a sync.Pool
// does, so a burst of large messages leaves no memory behind.
var slabPool sync.Pool // of *byte: the first byte of a readSlab slab

// getSlab returns a slab of size bytes, recycled when size is readSlab. A
// recycled slab is not zeroed: the reader hands out only bytes it read
// into it.
func getSlab(size int) []byte {
	if size != readSlab {
		return make([]byte, size)
	}
	var b []byte
	if p, _ := slabPool.Get().(*byte); p != nil {
		b = unsafe.Slice(p, readSlab)
	} else {
		b = make([]byte, readSlab)
	}
	runtime.SetFinalizer(&b[0], recycleSlab)
	return b
}

// recycleSlab is the finalizer of a slab's first byte, the start of its
// allocation: it runs once nothing references any byte of the slab.
func recycleSlab(p *byte) { slabPool.Put(p) }
