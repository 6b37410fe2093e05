package dist

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Slabs of readSlab bytes are recycled within a budget. A slab is handed
// out with a finalizer; when the garbage collector finds that nothing
// references it any more (no message still holds a binary in it), the
// finalizer puts it on a free list and the next reader that needs a slab
// reads into that memory again instead of a fresh allocation, which Go
// zeroes and the kernel faults in page by page.
//
// At most maxRecycledSlabs recycled slabs exist at once, process-wide;
// past that a reader gets a plain allocation, which the collector frees.
// The budget is what keeps memory bounded: a recycled slab is live memory,
// so recycling without a bound made every collection cycle longer, each
// longer cycle needed more slabs, and a steady stream of 64 KiB messages
// grew the heap by gigabytes (docs/performance-notes.md, "Recycled slabs,
// within a budget"). The plain
// allocations also count toward the next collection, which is what brings
// the recycled slabs back.
//
// Free slabs nobody asked for during slabIdle go back to the collector.
const maxRecycledSlabs = 128 // 32 MiB

var slabIdle = 30 * time.Second

var slabs = slabCache{max: maxRecycledSlabs}

// slabCache is the free list of recycled slabs and their budget.
type slabCache struct {
	mu   sync.Mutex
	free []*byte // the first byte of each free slab, the warmest last
	// live counts the recycled slabs in existence: free, or in use and
	// not yet found unreferenced.
	live    int
	max     int
	lastGet time.Time
	trim    *time.Timer // armed while free slabs wait
}

// getSlab returns a slab of size bytes, recycled when size is readSlab and
// the budget allows. A recycled slab is not zeroed: the reader hands out
// only bytes it read into it.
func getSlab(size int) []byte {
	if size != readSlab {
		return make([]byte, size)
	}
	return slabs.get()
}

func (s *slabCache) get() []byte {
	s.mu.Lock()
	s.lastGet = time.Now()
	if n := len(s.free); n > 0 {
		p := s.free[n-1]
		s.free[n-1] = nil
		s.free = s.free[:n-1]
		s.mu.Unlock()
		runtime.SetFinalizer(p, s.put)
		return unsafe.Slice(p, readSlab)
	}
	recycled := s.live < s.max
	if recycled {
		s.live++
	}
	s.mu.Unlock()
	b := make([]byte, readSlab)
	if recycled {
		runtime.SetFinalizer(&b[0], s.put)
	}
	return b
}

// put is the finalizer of a recycled slab's first byte, the start of its
// allocation: it runs once nothing references any byte of the slab.
func (s *slabCache) put(p *byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.free = append(s.free, p)
	if s.trim == nil {
		s.trim = time.AfterFunc(slabIdle, s.trimIdle)
	}
}

// trimIdle gives the free slabs back to the collector once none was asked
// for during slabIdle, and waits again otherwise.
func (s *slabCache) trimIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.free) == 0 {
		s.trim = nil
		return
	}
	if idle := time.Since(s.lastGet); idle < slabIdle {
		s.trim.Reset(slabIdle - idle)
		return
	}
	s.live -= len(s.free)
	clear(s.free)
	s.free = s.free[:0]
	s.trim = nil
}
