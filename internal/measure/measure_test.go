package measure

import (
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMedian(t *testing.T) {
	assert.Equal(t, 0.0, Median(nil))
	assert.Equal(t, 3.0, Median([]float64{5, 3, 1}))
	assert.Equal(t, 0.8, Median([]float64{0.9, 0.7, 0.8, 0.2, 1.1}), "one round hit by a burst of load does not move it")
}

// TestRounds: contenders run interleaved, each with its hooks around it,
// and each gets the median of its own rounds.
func TestRounds(t *testing.T) {
	var order []string
	contender := func(name string, rates ...float64) Contender {
		i := 0
		return Contender{
			Run:    func() (float64, int) { order = append(order, name); i++; return rates[i-1], 10 },
			Before: func() { order = append(order, "before "+name) },
			After:  func() { order = append(order, "after "+name) },
		}
	}
	burn := contender("b", 5, 1, 3)
	spent := time.Duration(0)
	burn.CPU = func() time.Duration { spent += 20 * time.Microsecond; return spent } // 20 µs per run: 2 µs per op
	got := Rounds(3, contender("a", 2, 9, 4), burn)
	assert.Equal(t, []Result{{Rate: 4}, {Rate: 3, CPUPerOp: 2}}, got)
	assert.Equal(t, []string{"before a", "a", "after a", "before b", "b", "after b",
		"before a", "a", "after a", "before b", "b", "after b",
		"before a", "a", "after a", "before b", "b", "after b"}, order)
}

// TestCPU: CPU burnt shows in this process's figure.
// TestCPU: a busy loop shows up in SelfCPU, and no faster than wall time
// allows. On a loaded machine the loop gets the CPU late, so it spins until
// 30 ms of CPU are counted (or 10 s pass, which fails).
func TestCPU(t *testing.T) {
	self0, start := SelfCPU(), time.Now()
	for SelfCPU()-self0 < 30*time.Millisecond && time.Since(start) < 10*time.Second {
	}
	used, wall := SelfCPU()-self0, time.Since(start)
	assert.GreaterOrEqual(t, used, 30*time.Millisecond, "a busy loop of %s counted %s of CPU", wall, used)
	assert.LessOrEqual(t, used, wall*time.Duration(runtime.NumCPU())+10*time.Millisecond, "more CPU than the machine has")
	assert.Positive(t, ThreadCPU(t, os.Getpid()), "the main thread has run")
	assert.GreaterOrEqual(t, ProcessCPU(t, os.Getpid()), used, "every thread's CPU includes the busy loop's")
}

// TestAllocsPerOp: a contender that allocates once per operation is
// counted at one allocation per operation, give or take the runtime's own.
func TestAllocsPerOp(t *testing.T) {
	var keep [][]byte
	run := func() (float64, int) {
		for range 1000 {
			keep = append(keep[:0], make([]byte, 64))
		}
		return 1, 1000
	}
	got := Rounds(3, Contender{Run: run, Allocs: true}, Contender{Run: run})
	assert.InDelta(t, 1, got[0].AllocsPerOp, 0.1)
	assert.Zero(t, got[1].AllocsPerOp, "not counted unless asked")
}

// TestProfile: with the variable set, a run leaves a CPU and an allocation
// profile that go tool pprof reads; without it, none.
func TestProfile(t *testing.T) {
	dir := t.TempDir()
	ran := 0
	Profile(t, "none", func() { ran++ })
	t.Setenv(ProfileEnv, dir)
	Profile(t, "run", func() { ran++ })
	assert.Equal(t, 2, ran)
	for _, name := range []string{"run.cpu.pprof", "run.allocs.pprof"} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		zr, err := gzip.NewReader(bytes.NewReader(raw)) // pprof's format: gzipped protobuf
		require.NoError(t, err, "%s is not a pprof profile", name)
		body, err := io.ReadAll(zr)
		require.NoError(t, err)
		assert.NotEmpty(t, body, name)
	}
	_, err := os.Stat(filepath.Join(dir, "none.cpu.pprof"))
	assert.ErrorIs(t, err, os.ErrNotExist, "a profile without the variable")
	assert.FileExists(t, filepath.Join(moduleRoot(t), "go.mod"), "relative directories are the module root's")
}

func TestFreePortAndWait(t *testing.T) {
	port := FreePort(t)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err, "the free port could not be taken")
	defer ln.Close()
	WaitListening(t, port, "the listener", note("no log")) // the kernel accepts into the backlog
}

// TestServe: two connections at once are each handled (an echo), and the
// listener is gone once the test ends.
func TestServe(t *testing.T) {
	var port int
	t.Run("serve", func(t *testing.T) {
		port = Serve(t, func(c net.Conn) {
			defer c.Close()
			_, _ = io.Copy(c, c)
		})
		a, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		require.NoError(t, err)
		defer a.Close()
		b, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		require.NoError(t, err)
		defer b.Close()
		for _, c := range []net.Conn{b, a} { // the second is answered while the first waits
			_, err := c.Write([]byte("ping"))
			require.NoError(t, err)
			got := make([]byte, 4)
			_, err = io.ReadFull(c, got)
			require.NoError(t, err)
			assert.Equal(t, "ping", string(got))
		}
	})
	_, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	assert.Error(t, err, "still listening after the test that served ended")
}

type note string

func (n note) String() string { return string(n) }

// TestPgbenchResult reads the figures of pgbench's report, with and
// without -C, and fails a report that lacks one.
func TestPgbenchResult(t *testing.T) {
	tests := []struct {
		name, out string
		tps       float64
		txs       int
		wantErr   bool
	}{
		{"select", "number of transactions actually processed: 41234\nlatency average = 0.29 ms\ntps = 13744.6 (without initial connection time)\n", 13744.6, 41234, false},
		{"connect", "number of transactions actually processed: 2100\ntps = 700.0 (including reconnection times)\n", 700, 2100, false},
		{"no tps", "number of transactions actually processed: 10\n", 0, 0, true},
		{"no count", "tps = 5.0 (without initial connection time)\n", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tps, txs, err := PgbenchResult([]byte(tt.out))
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.tps, tps, "got tps %v, want %v", tps, tt.tps)
			assert.Equal(t, tt.txs, txs, "got %d transactions, want %d", txs, tt.txs)
		})
	}
}
