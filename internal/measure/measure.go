// Package measure is what the benchmarks measure with: CPU time (this
// process's, or a peer's such as PgBouncer or HAProxy), interleaved rounds
// of contenders and their medians, the peers' binaries and ports, and a listener for
// the peers that run in the benchmark's own process.
package measure

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/deploy/sandbox"
)

// SelfCPU is the user and system CPU time this process has used: in the
// benchmarks, the bastion's (clients and servers are other processes).
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ThreadCPU is the CPU time of the single-threaded process pid, to the
// nanosecond (a peer such as PgBouncer, or HAProxy with one thread).
func ThreadCPU(tb testing.TB, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	require.NoError(tb, err)
	var ns int64
	_, err = fmt.Sscan(string(raw), &ns)
	require.NoError(tb, err)
	return time.Duration(ns)
}

// Median is the middle of v (v is reordered); 0 when v is empty.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// Contender is one way to the server in a benchmark that compares several
// (direct, through a peer, through sallyport).
type Contender struct {
	// Run runs the load once and returns its rate (operations per second)
	// and how many operations it made.
	Run func() (rate float64, ops int)
	// CPU, when set, is the CPU time the contender's relay has used so far.
	CPU func() time.Duration
	// Before and After, when set, run around each run.
	Before, After func()
	// Allocs says the contender's relay runs in this process: its heap
	// allocations per operation are counted (process-wide).
	Allocs bool
}

// Result is a contender's median rate, median CPU microseconds per
// operation (0 without CPU) and median heap allocations per operation (0
// without Allocs).
type Result struct{ Rate, CPUPerOp, AllocsPerOp float64 }

// mallocs is how many heap objects this process has allocated so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// Rounds runs every contender n times, interleaved so that a burst of load
// from elsewhere on the machine hits all alike, and returns each one's
// medians, in the order given.
func Rounds(n int, cs ...Contender) []Result {
	rates := make([][]float64, len(cs))
	cpu := make([][]float64, len(cs))
	allocs := make([][]float64, len(cs))
	for range n {
		for i, c := range cs {
			r, a := c.round()
			rates[i] = append(rates[i], r.Rate)
			if c.CPU != nil && a > 0 {
				cpu[i] = append(cpu[i], r.CPUPerOp)
			}
			if c.Allocs && a > 0 {
				allocs[i] = append(allocs[i], r.AllocsPerOp)
			}
		}
	}
	out := make([]Result, len(cs))
	for i := range cs {
		out[i] = Result{Rate: Median(rates[i]), CPUPerOp: Median(cpu[i]), AllocsPerOp: Median(allocs[i])}
	}
	return out
}

// round runs c once and returns its figures and how many operations it made.
func (c Contender) round() (Result, int) {
	if c.Before != nil {
		c.Before()
	}
	if c.After != nil {
		defer c.After()
	}
	var cpu0 time.Duration
	if c.CPU != nil {
		cpu0 = c.CPU()
	}
	var m0 uint64
	if c.Allocs {
		m0 = mallocs()
	}
	rate, ops := c.Run()
	r := Result{Rate: rate}
	if ops <= 0 {
		return r, 0
	}
	if c.CPU != nil {
		r.CPUPerOp = float64((c.CPU() - cpu0).Microseconds()) / float64(ops)
	}
	if c.Allocs {
		r.AllocsPerOp = float64(mallocs()-m0) / float64(ops)
	}
	return r, ops
}

// ServerBinary is the path of a server from Debian package pkg, which
// root's PATH has and others' may lack; a missing one is a missing
// server (sandbox.Need: with CI set, the benchmark fails).
func ServerBinary(tb testing.TB, name, pkg string) string {
	tb.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		bin = "/usr/sbin/" + name
	}
	if _, err := os.Stat(bin); err != nil {
		sandbox.Need(tb, fmt.Errorf("%s not found: install the Debian package %s: %w", name, pkg, sandbox.ErrNotInstalled))
	}
	return bin
}

// FreePort is a loopback TCP port nothing listens on now (see sandbox.FreePort).
func FreePort(tb testing.TB) int {
	port, err := sandbox.FreePort()
	require.NoError(tb, err)
	return port
}

// Serve accepts loopback TCP connections until the benchmark ends and
// hands each to handle on a goroutine of its own; it returns the port. The
// in-process peers of benchmarks (bare relays) and tests (an echo server)
// listen with it.
func Serve(tb testing.TB, handle func(net.Conn)) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitListening waits up to 10 s for what (a peer just started) to accept
// connections on port; log says why it did not.
func WaitListening(tb testing.TB, port int, what string, log fmt.Stringer) {
	tb.Helper()
	require.Eventually(tb, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "%s did not start: %s", what, log)
}

// ProcessCPU is the CPU time of every thread of process pid so far, to the
// nanosecond (a multi-threaded peer: HAProxy with nbthread above one, or
// the serve binary).
func ProcessCPU(tb testing.TB, pid int) time.Duration {
	dirs, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	require.NoError(tb, err)
	var sum time.Duration
	for _, d := range dirs {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, d.Name()))
		if err != nil {
			continue // the thread ended meanwhile
		}
		var ns int64
		if _, err := fmt.Sscan(string(raw), &ns); err == nil {
			sum += time.Duration(ns)
		}
	}
	return sum
}
