package ssh

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/internal/measure"
)

// bulkBytes is what the throughput benchmark pulls per session, as in the
// issue's `ssh target 'head -c 400000000 /dev/zero'`.
const bulkBytes = 400_000_000

// timeRun runs cmd with stdout discarded and returns its wall time.
func timeRun(b *testing.B, cmd *exec.Cmd) time.Duration {
	b.Helper()
	// A file, not io.Discard: ssh writes to /dev/null itself instead of
	// this process copying its output, which would count as bastion CPU.
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(b, err)
	defer devnull.Close()
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = devnull, &stderr
	start := time.Now()
	require.NoError(b, cmd.Run(), "%s", stderr.String())
	return time.Since(start)
}

// BenchmarkSSHThroughput pulls 400 MB through the bastion (recording on),
// through the bare x/crypto relay (see bareRelay) and straight from the
// same sshd, throughputRounds times, interleaved so that a burst of load
// from elsewhere hits all alike, and reports the median of each rate and
// of the rounds' ratios, and the CPU per GB of either relay.
func BenchmarkSSHThroughput(b *testing.B) {
	h := newHarness(b, harnessOptions{})
	bare := startBareRelay(b, h)
	ctx := context.Background()
	cmd := []string{"-c", "aes128-gcm@openssh.com", "127.0.0.1", "head -c " + itoa(bulkBytes) + " /dev/zero"}
	mb := float64(bulkBytes) / 1e6
	var direct, proxied, viaBare, ratios, bareRatios []float64
	var cpu, bareCPU time.Duration
	b.ResetTimer()
	for range b.N {
		for range throughputRounds {
			d := timeRun(b, h.sshDirect(ctx, cmd...))
			before := measure.SelfCPU()
			p := timeRun(b, h.ssh(ctx, "svc-ops", cmd...))
			cpu += measure.SelfCPU() - before
			before = measure.SelfCPU()
			r := timeRun(b, h.sshBare(ctx, bare, cmd...))
			bareCPU += measure.SelfCPU() - before
			direct, proxied, viaBare = append(direct, mb/d.Seconds()), append(proxied, mb/p.Seconds()), append(viaBare, mb/r.Seconds())
			ratios, bareRatios = append(ratios, d.Seconds()/p.Seconds()), append(bareRatios, d.Seconds()/r.Seconds())
		}
	}
	gb := mb * float64(len(ratios)) / 1000
	b.ReportMetric(cpu.Seconds()/gb, "bastion-CPU-s/GB")
	b.ReportMetric(bareCPU.Seconds()/gb, "bare-CPU-s/GB")
	b.ReportMetric(measure.Median(direct), "direct-MB/s")
	b.ReportMetric(measure.Median(proxied), "proxied-MB/s")
	b.ReportMetric(measure.Median(viaBare), "bare-MB/s")
	b.ReportMetric(measure.Median(ratios), "ratio")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
	b.ReportMetric(measure.Median(bareRatios), "bare-ratio")
}

// throughputRounds is how many direct and proxied transfers one
// BenchmarkSSHThroughput iteration makes; the medians count. On two cores
// one round's ratio ranges from 0.67 to 0.92 (the direct transfer, three
// processes on two cores, swings most), and the median of 5 still moved
// from 0.73 to 0.92 between runs.
const throughputRounds = 9

// BenchmarkSSHSetup times `ssh target true` through the bastion (registry
// check, certificate and recording included) and straight to sshd.
func BenchmarkSSHSetup(b *testing.B) {
	h := newHarness(b, harnessOptions{})
	ctx := context.Background()
	var direct, proxied time.Duration
	b.ResetTimer()
	for range b.N {
		direct += timeRun(b, h.sshDirect(ctx, "127.0.0.1", "true"))
		proxied += timeRun(b, h.ssh(ctx, "svc-ops", "127.0.0.1", "true"))
	}
	b.ReportMetric(float64(direct.Milliseconds())/float64(b.N), "direct-ms/op")
	b.ReportMetric(float64(proxied.Milliseconds())/float64(b.N), "proxied-ms/op")
	b.ReportMetric(proxied.Seconds()/direct.Seconds(), "ratio")
}
