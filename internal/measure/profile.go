package measure

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/stretchr/testify/require"
)

// ProfileEnv names the directory the benchmarks save pprof profiles of the
// bastion in (make bench: bin/bench/profiles); unset, they save none.
const ProfileEnv = "SALLYPORT_BENCH_PROFILES"

// Profile wraps run, when ProfileEnv names a directory, in a CPU profile
// saved as NAME.cpu.pprof and an allocation profile of what run allocated
// saved as NAME.allocs.pprof (go tool pprof -sample_index=alloc_space).
// Without it, run runs alone.
func Profile(tb testing.TB, name string, run func()) {
	dir := os.Getenv(ProfileEnv)
	if dir == "" {
		run()
		return
	}
	require.NoError(tb, os.MkdirAll(dir, 0o755))
	cpu, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
	require.NoError(tb, err)
	defer cpu.Close()
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 4096
	defer func() { runtime.MemProfileRate = rate }()
	runtime.GC()
	require.NoError(tb, pprof.StartCPUProfile(cpu))
	run()
	pprof.StopCPUProfile()
	runtime.GC() // the profile counts allocations up to the last collection
	allocs, err := os.Create(filepath.Join(dir, name+".allocs.pprof"))
	require.NoError(tb, err)
	defer allocs.Close()
	require.NoError(tb, pprof.Lookup("allocs").WriteTo(allocs, 0))
}
