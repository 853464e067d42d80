package heapfloor

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rssKiB is this process's resident memory.
func rssKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestFloorCostsNoMemory checks what the package promises an operator: the
// floor raises the collector's target by Size without taking Size of RAM,
// so 128 MiB of short-lived packets cost a few collections instead of
// the dozens a heap of a few megabytes would run (one per doubling).
func TestFloorCostsNoMemory(t *testing.T) {
	if os.Getenv("GOGC") != "" { // the operator tunes the collector: no floor
		Set()
		require.Nil(t, floor, "a floor despite GOGC=%s", os.Getenv("GOGC"))
		return
	}
	rss := rssKiB(t)
	Set() // first, as serve does: the process has freed nothing yet
	require.NotNil(t, floor)
	grew := rssKiB(t) - rss
	require.Less(t, grew, 4<<10, "the floor took %d KiB of resident memory", grew)
	Set() // once only

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var keep [][]byte
	for range 4096 { // 128 MiB of 32 KiB packets, as a bulk transfer makes
		keep = append(keep, make([]byte, 32<<10))
		if len(keep) > 4 {
			keep = keep[1:]
		}
	}
	runtime.ReadMemStats(&after)
	n := after.NumGC - before.NumGC
	t.Logf("collections for 128 MiB of garbage with the floor: %d (heap goal %d MiB)", n, after.NextGC>>20)
	// A cycle starts when the heap reaches twice the floor: one per Size
	// of garbage at most, plus the one the garbage already there at the
	// start may trigger, where a heap of a few MiB runs about 30.
	require.LessOrEqual(t, n, uint32(128<<20/Size+1), "the floor did not make collections rarer")
	require.Less(t, rssKiB(t)-rss, 2*Size>>10+8<<10, "garbage held past the floor's bound")
}
