// Package heapfloor keeps Go's collector from running every few megabytes
// in a process whose live heap is small but which allocates fast.
//
// The bastion is such a process during a bulk SSH transfer: x/crypto
// allocates a fresh 32 KiB buffer for every packet it reads, so a 250 MB/s
// transfer through a bastion holding a few megabytes of live data ran a
// collection dozens of times a second. The collector starts a cycle when
// the heap doubles what survived the last one; a floor, an allocation the
// process holds but never touches, raises what survives, so cycles come
// far less often. Measured on a 2-core machine: the bastion's CPU per GB
// relayed fell by a quarter (see docs/benchmarks.md).
//
// The floor costs address space, not memory: its pages are never written,
// so the kernel never backs them, and the collector never scans them (they
// hold no pointers). What it does cost is that up to Size bytes of garbage
// may accumulate between collections before the runtime hands them back.
package heapfloor

import (
	"os"
	"sync"
)

// Size is the floor serve keeps. 16 MiB already takes collections from
// dozens a second to a few during a bulk transfer; 64 MiB saved no more
// CPU but, collecting less often while thousands of sessions opened, left
// their objects spread over more of the heap: 6 KiB more per idle session.
const Size = 16 << 20

var (
	once  sync.Once
	floor []byte
)

// Set gives the process its floor once; later calls do nothing. Call it
// first thing: only address space the process never used comes unwritten
// (memory freed earlier is zeroed, and so made resident, when reused). It does
// nothing either when the environment sets GOGC: whoever tunes the
// collector by hand gets exactly what they asked for.
func Set() {
	once.Do(func() {
		if os.Getenv("GOGC") != "" {
			return
		}
		floor = make([]byte, Size)
	})
}
