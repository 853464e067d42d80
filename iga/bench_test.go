package iga_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/sallyport/sallyport/iga"
)

// admBenchIdentities is the registry size the admission goal is set for.
const admBenchIdentities = 100_000

// admBenchBatch is how many identities one seeding transaction writes.
const admBenchBatch = 5_000

// admBenchKeys is how many distinct SSH keys the benchmark identities share.
const admBenchKeys = 64

// BenchmarkDecide measures one full admission (identity, owner, rules,
// credential, audit write) on a SQLite registry of 100,000 identities and
// reports the p50 and p99 latency of single decisions. Goal: p99 ≤ 1 ms.
func BenchmarkDecide(b *testing.B) {
	s := admSQLite(b)
	keys := admBenchSeed(b, s)
	reg := admRegistry(s, nil)
	b.Run("sqlite-100k", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		latencies := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			i := rng.IntN(admBenchIdentities)
			req := iga.Request{Identity: admBenchID(i), Target: "web-01", Action: iga.ActionExec,
				Source: netip.MustParseAddr("10.1.2.3"), Credential: &iga.Credential{SSHKey: keys[i%admBenchKeys]}}
			start := time.Now()
			d, err := reg.Decide(context.Background(), req)
			latencies = append(latencies, time.Since(start))
			if err != nil || !d.Allow {
				b.Fatalf("decide %s: got %v %v, want allow", req.Identity, d.Reasons, err)
			}
		}
		b.StopTimer()
		slices.Sort(latencies)
		b.ReportMetric(admPercentile(latencies, 0.50), "p50-µs")
		b.ReportMetric(admPercentile(latencies, 0.99), "p99-µs")
	})
}

func admBenchID(i int) string { return fmt.Sprintf("svc-%06d", i) }

// admBenchSeed writes the people and 100,000 admissible identities in
// batches and returns the SSH keys they use.
func admBenchSeed(b testing.TB, s iga.Store) []ssh.PublicKey {
	keys, lines := make([]ssh.PublicKey, admBenchKeys), make([]string, admBenchKeys)
	for i := range keys {
		keys[i], lines[i] = admKey(b)
	}
	admSeed(b, s, admPeople, nil, nil)
	for start := 0; start < admBenchIdentities; start += admBenchBatch {
		err := s.Update(context.Background(), func(tx iga.Tx) error {
			for i := start; i < start+admBenchBatch; i++ {
				if err := admPutIdentity(tx, admPassing(admBenchID(i), lines[i%admBenchKeys])); err != nil {
					return err
				}
			}
			return nil
		})
		require.NoError(b, err, "seed identities from %d", start)
	}
	return keys
}

// admPercentile is the p-quantile of sorted latencies, in microseconds.
func admPercentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(float64(len(sorted))*p), len(sorted)-1)
	return float64(sorted[i].Nanoseconds()) / 1e3
}
