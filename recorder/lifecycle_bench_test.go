package recorder

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSessionLifecycle measures what one short database session costs
// the recorder from Open to the state a user sees at the end, stored: open
// (session.json in the spool), five query events, Close (seal), upload to
// a file store on the spool's filesystem (the default layout, DataDir/spool
// and DataDir/recordings) and removal from the spool. pgbench -C opens one
// such session per connection, so this is the recorder's share of the cost
// of a new connection through the bastion. It reports the wall time and
// the process's CPU time per session. Count its syscalls with
//
//	go test -c -o /tmp/rec.test ./recorder/
//	strace -f -c -e trace=fsync,fdatasync,openat,mkdirat,unlinkat,renameat,linkat \
//	  /tmp/rec.test -test.run '^$' -test.bench SessionLifecycle -test.benchtime 200x
func BenchmarkSessionLifecycle(b *testing.B) {
	dir := b.TempDir()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	cfg := Config{DataDir: filepath.Join(dir, "data"), FlushInterval: time.Second}
	store, err := NewFileStore(cfg.FileStoreDir())
	if err != nil {
		b.Fatal(err)
	}
	stored := make(chan string, 1)
	rec := &Recorder{Config: cfg, Store: store, Key: key, OnState: func(c StateChange) {
		if c.State == StateStored {
			stored <- c.Meta.ID
		}
	}}
	if err := rec.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rec.Shutdown(context.Background()) })
	ctx := context.Background()
	rows := int64(1)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range b.N {
		meta := testMeta(fmt.Sprintf("s-life-%06d", i))
		meta.Protocol, meta.Target, meta.Login = "postgres", "db-01", "sp_life"
		s, err := rec.Open(ctx, meta)
		if err != nil {
			b.Fatal(err)
		}
		for q := range 5 {
			ev := Event{Type: EventQuery, SQL: "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
				Params: []any{fmt.Sprint(q * 7919)}, DurationMS: 0.08, Outcome: &Outcome{Tag: "SELECT 1", Rows: &rows}}
			if err := s.Event(ev); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Close(ctx, End{Reason: "client closed"}); err != nil {
			b.Fatal(err)
		}
		select {
		case id := <-stored:
			if id != meta.ID {
				b.Fatalf("got %s stored, want %s", id, meta.ID)
			}
		case <-time.After(10 * time.Second):
			b.Fatalf("session %s not stored within 10s", meta.ID)
		}
	}
	// Wall time per session is mostly waiting for the disk's fsyncs, which
	// other work on the machine slows; the process's CPU time is steadier.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
