package ssh

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/measure"
	"github.com/sallyport/sallyport/recorder"
)

// execBenchBytes is the file each round cats through both bastions: random,
// so the capture's compression does real work.
const execBenchBytes = 256 << 20

// BenchmarkExecCapture pulls a random file with `ssh … cat FILE` through a
// bastion that keeps the default 16 MiB of each exec stream and through one
// that keeps none (recordings.exec_capture_limit: 0, counts and hashes
// only), interleaved, and reports the median of the rounds' rate ratios
// (goal ≥ 0.95) and each bastion's CPU per GB. Both hash every byte.
func BenchmarkExecCapture(b *testing.B) {
	capped := newHarness(b, harnessOptions{})
	none := newHarness(b, harnessOptions{tuneRecorder: func(r *recorder.Recorder) { r.Config.ExecCaptureLimit = -1 }})
	file := filepath.Join(b.TempDir(), "random.bin")
	data := make([]byte, execBenchBytes)
	_, _ = rand.Read(data)
	require.NoError(b, os.WriteFile(file, data, 0o644))
	ctx := context.Background()
	cmd := []string{"-c", "aes128-gcm@openssh.com", "127.0.0.1", "cat " + file}
	mb := float64(execBenchBytes) / 1e6
	var ratios, cappedRates, noneRates []float64
	var cappedCPU, noneCPU time.Duration
	b.ResetTimer()
	for range b.N {
		for range execCaptureRounds {
			before := measure.SelfCPU()
			c := timeRun(b, capped.ssh(ctx, "svc-ops", cmd...))
			cappedCPU += measure.SelfCPU() - before
			before = measure.SelfCPU()
			n := timeRun(b, none.ssh(ctx, "svc-ops", cmd...))
			noneCPU += measure.SelfCPU() - before
			cappedRates, noneRates = append(cappedRates, mb/c.Seconds()), append(noneRates, mb/n.Seconds())
			ratios = append(ratios, n.Seconds()/c.Seconds())
		}
	}
	gb := mb * float64(len(ratios)) / 1000
	b.ReportMetric(measure.Median(cappedRates), "capped-MB/s")
	b.ReportMetric(measure.Median(noneRates), "uncaptured-MB/s")
	b.ReportMetric(cappedCPU.Seconds()/gb, "capped-CPU-s/GB")
	b.ReportMetric(noneCPU.Seconds()/gb, "uncaptured-CPU-s/GB")
	b.ReportMetric(measure.Median(ratios), "ratio")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
}

// execCaptureRounds is how many transfers through each bastion one
// iteration makes; the medians count.
const execCaptureRounds = 7
