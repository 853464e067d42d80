package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sallyport/sallyport/internal/measure"
	"github.com/sallyport/sallyport/recorder"
)

// The audit benchmarks feed one pgbench -S exchange per iteration through
// the scanners and the audit the way the pump's two flows do, and hand the
// completed statements over a batch at a time: to nobody ("audit", the
// relay's own cost) or to a real recording ("recorded").

// pgbenchSimple is pgbench -S's query, as two texts that alternate (the
// account differs from query to query), and the server's answer.
func pgbenchSimple(b *testing.B) (clients [][]byte, server []byte) {
	for _, aid := range []string{"12345", "67890"} {
		clients = append(clients, encode(b, nil, &pgproto3.Query{String: "SELECT abalance FROM pgbench_accounts WHERE aid = " + aid + ";"}))
	}
	return clients, answer(b)
}

// pgbenchExtended is the same query with three bound parameters, in the
// extended protocol, and the server's answer.
func pgbenchExtended(b *testing.B, formats []int16, args [][]byte) (client, server []byte) {
	client = encode(b, nil,
		&pgproto3.Parse{Query: "SELECT abalance FROM pgbench_accounts WHERE aid = $1 AND bid = $2 AND filler <> $3"},
		&pgproto3.Bind{ParameterFormatCodes: formats, Parameters: args},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
		&pgproto3.Sync{})
	server = encode(b, nil, &pgproto3.ParseComplete{}, &pgproto3.BindComplete{})
	return client, append(server, answer(b)...)
}

// answer is a one-row SELECT's result and ReadyForQuery.
func answer(b *testing.B) []byte {
	return encode(b, nil,
		&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("abalance"),
			DataTypeOID: 23, DataTypeSize: 4, TypeModifier: -1}}},
		&pgproto3.DataRow{Values: [][]byte{[]byte("-4711")}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'})
}

func encode(b *testing.B, dst []byte, msgs ...pgproto3.Message) []byte {
	for _, m := range msgs {
		var err error
		if dst, err = m.Encode(dst); err != nil {
			b.Fatal(err)
		}
	}
	return dst
}

func BenchmarkAuditSimple(b *testing.B) {
	clients, server := pgbenchSimple(b)
	benchAudit(b, clients, server)
}

// BenchmarkAuditSimpleRepeated sends one text again and again, as a
// client that polls does.
func BenchmarkAuditSimpleRepeated(b *testing.B) {
	clients, server := pgbenchSimple(b)
	benchAudit(b, clients[:1], server)
}

func BenchmarkAuditExtended(b *testing.B) {
	client, server := pgbenchExtended(b, nil, [][]byte{[]byte("12345"), []byte("1"), []byte("x")})
	benchAudit(b, [][]byte{client}, server)
}

// BenchmarkAuditExtendedBinary binds one parameter in binary, as pgx does
// for integers.
func BenchmarkAuditExtendedBinary(b *testing.B) {
	client, server := pgbenchExtended(b, []int16{1, 0, 0}, [][]byte{{0, 0, 0x30, 0x39}, []byte("1"), []byte("x")})
	benchAudit(b, [][]byte{client}, server)
}

// BenchmarkAuditPrepared is pgbench -M prepared: the statement parsed
// once, then a Bind of it, Execute and Sync per query.
func BenchmarkAuditPrepared(b *testing.B) {
	const query = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
	setup := [2][]byte{encode(b, nil, &pgproto3.Parse{Name: "P0_1", Query: query}, &pgproto3.Sync{}),
		encode(b, nil, &pgproto3.ParseComplete{}, &pgproto3.ReadyForQuery{TxStatus: 'I'})}
	var clients [][]byte
	for _, aid := range []string{"12345", "67890"} {
		clients = append(clients, encode(b, nil, &pgproto3.Bind{PreparedStatement: "P0_1", Parameters: [][]byte{[]byte(aid)}},
			&pgproto3.Execute{}, &pgproto3.Sync{}))
	}
	server := encode(b, nil, &pgproto3.BindComplete{}, &pgproto3.DataRow{Values: [][]byte{[]byte("-4711")}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	benchAudit(b, clients, server, setup)
}

// benchAudit runs the exchange unrecorded and recorded; setup, when
// given, is a client message and its answer sent once before.
func benchAudit(b *testing.B, clients [][]byte, server []byte, setup ...[2][]byte) {
	b.Run("audit", func(b *testing.B) {
		a := newAudit(time.Now)
		runAudit(b, a, clients, server, setup, func() { a.recycle(a.take()) }, func() {})
	})
	b.Run("recorded", func(b *testing.B) {
		a := newAudit(time.Now)
		rec, closeRec := openBenchRecording(b)
		a.start(rec)
		runAudit(b, a, clients, server, setup, func() {
			if err := a.flush(); err != nil {
				b.Fatal(err)
			}
		}, closeRec)
	})
}

// runAudit is the pump's two flows, the client sending each of clients
// in turn, with the hand-over of a full batch done in line. Besides ns/op it reports the CPU the whole process spent
// per query until done returned (the recorder works on goroutines of its
// own), as cpu-ns/op.
func runAudit(b *testing.B, a *audit, clients [][]byte, server []byte, setup [][2][]byte, handOver, done func()) {
	fromClient := &frameScanner{max: 1 << 20, want: clientWants, handle: a.client}
	fromTarget := &frameScanner{max: 1 << 20, want: serverWants, handle: a.server}
	for _, s := range setup {
		if _, err := a.scan(fromClient, s[0]); err != nil {
			b.Fatal(err)
		}
		if _, err := a.scan(fromTarget, s[1]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(clients[0]) + len(server)))
	cpu0 := measure.SelfCPU()
	for i := 0; b.Loop(); i++ {
		if _, err := a.scan(fromClient, clients[i%len(clients)]); err != nil {
			b.Fatal(err)
		}
		n, err := a.scan(fromTarget, server)
		if err != nil {
			b.Fatal(err)
		}
		if n >= eventBatch {
			handOver()
		}
	}
	handOver()
	done()
	b.ReportMetric(float64(measure.SelfCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	if len(a.queue) != 0 {
		b.Fatalf("statements left in flight: %d", len(a.queue))
	}
}

// openBenchRecording opens a recording in a temporary data dir, and a
// func that closes it and waits for its upload.
func openBenchRecording(b *testing.B) (*recorder.Session, func()) {
	ctx := context.Background()
	cfg := recorder.Config{DataDir: b.TempDir(), FailClosed: true}
	key, err := recorder.LoadOrCreateSigningKey(cfg.KeyFile())
	if err != nil {
		b.Fatal(err)
	}
	store, err := recorder.NewStore(cfg)
	if err != nil {
		b.Fatal(err)
	}
	rec := &recorder.Recorder{Config: cfg, Store: store, Key: key}
	if err := rec.Start(ctx); err != nil {
		b.Fatal(err)
	}
	s, err := rec.Open(ctx, recorder.SessionMeta{ID: "s-bench", Identity: "svc", Target: "db",
		Protocol: "postgres", Login: "sp_bench", StartedAt: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	return s, func() {
		if err := s.Close(ctx, recorder.End{Reason: "benchmark done"}); err != nil {
			b.Fatal(err)
		}
		if err := rec.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
