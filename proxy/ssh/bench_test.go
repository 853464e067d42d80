package ssh

import (
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// bulkBytes is what the throughput benchmark pulls per session, as in the
// issue's `ssh target 'head -c 400000000 /dev/zero'`.
const bulkBytes = 400_000_000

// timeRun runs cmd with stdout discarded and returns its wall time.
func timeRun(b *testing.B, cmd *exec.Cmd) time.Duration {
	b.Helper()
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	err := cmd.Run()
	require.NoError(b, err, "%s", stderr.String())
	return time.Since(start)
}

// BenchmarkSSHThroughput pulls 400 MB through the bastion (recording on)
// and straight from the same sshd, and reports both rates and their ratio.
func BenchmarkSSHThroughput(b *testing.B) {
	h := newHarness(b, harnessOptions{})
	ctx := context.Background()
	cmd := []string{"-c", "aes128-gcm@openssh.com", "127.0.0.1", "head -c " + itoa(bulkBytes) + " /dev/zero"}
	var direct, proxied time.Duration
	b.ResetTimer()
	for range b.N {
		direct += timeRun(b, h.sshDirect(ctx, cmd...))
		proxied += timeRun(b, h.ssh(ctx, "svc-ops", cmd...))
	}
	mb := float64(bulkBytes) * float64(b.N) / 1e6
	b.ReportMetric(mb/direct.Seconds(), "direct-MB/s")
	b.ReportMetric(mb/proxied.Seconds(), "proxied-MB/s")
	b.ReportMetric(direct.Seconds()/proxied.Seconds(), "ratio")
}

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
