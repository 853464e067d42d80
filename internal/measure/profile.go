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
// bastion in, e.g. bin/bench/profiles (a relative one is taken from the
// module's root, not the package's directory go test runs in); unset,
// they save none.
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
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(moduleRoot(tb), dir)
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

// moduleRoot is the nearest directory above the working directory that
// holds go.mod.
func moduleRoot(tb testing.TB) string {
	dir, err := os.Getwd()
	require.NoError(tb, err)
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
