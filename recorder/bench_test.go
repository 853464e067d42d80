package recorder

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// relayRead is the size of one relay read, as the SSH proxy's buffer.
const relayRead = 32000

// benchData is what the benchmarks record, in relay reads: "typical" is
// an interactive session's output (termSample: listings, compiler errors
// and prompts with colour escapes), "worst" random bytes (`cat` of a
// binary: most bytes need escaping and nothing compresses).
var benchData = map[string]func() []byte{
	"typical": sync.OnceValue(func() []byte { return termSample(8 << 20) }),
	"worst":   sync.OnceValue(func() []byte { return randomSample(8 << 20) }),
}

var benchKinds = []string{"typical", "worst"}

// benchCompressions are the Config.Compression values benchmarked: zstd
// (the default), gzip (the default before it) and none.
var benchCompressions = []string{CompressionZstd, CompressionGzip, CompressionNone}

// pieces cuts data into relay reads.
func pieces(data []byte) [][]byte {
	var out [][]byte
	for i := 0; i < len(data); i += relayRead {
		out = append(out, data[i:min(i+relayRead, len(data))])
	}
	return out
}

func benchRecorder(b *testing.B, dir, compression string) *Recorder {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	store, err := NewFileStore(filepath.Join(dir, "store"))
	if err != nil {
		b.Fatal(err)
	}
	rec := &Recorder{Config: Config{DataDir: filepath.Join(dir, "data"), FlushInterval: time.Second, Compression: compression},
		Store: store, Key: key}
	if err := rec.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rec.Shutdown(context.Background()) })
	return rec
}

// BenchmarkRecordOutput measures recording throughput of terminal output
// with flush_interval 1s, from the relay's write to the sealed spool, and
// reports the CPU time per MB, and how much smaller the stored chunks are
// than the output (stored-ratio).
func BenchmarkRecordOutput(b *testing.B) {
	for _, kind := range benchKinds {
		for _, where := range []string{"disk", "tmpfs"} {
			for _, comp := range benchCompressions {
				b.Run(kind+"/"+where+"/"+comp, func(b *testing.B) {
					dir := b.TempDir()
					if where == "tmpfs" {
						dir = memTempDirB(b)
					}
					recordOutput(b, benchRecorder(b, dir, comp), kind)
				})
			}
		}
	}
}

// recordOutput records b.N relay reads of benchData[kind] in one session.
func recordOutput(b *testing.B, rec *Recorder, kind string) {
	s, err := rec.Open(context.Background(), testMeta(fmt.Sprintf("bench-%d", b.N)))
	if err != nil {
		b.Fatal(err)
	}
	ps := pieces(benchData[kind]())
	b.SetBytes(relayRead)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		if err := s.Output(0, ps[i%len(ps)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(context.Background(), End{}); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	mb := float64(b.N*relayRead) / 1e6
	b.ReportMetric(float64(cpuTime()-cpu0)/mb, "cpu-ns/MB")
	b.ReportMetric(mb*1e6/float64(storedBytes(b, rec, s)), "stored-ratio")
}

// storedBytes is the size of the terminal stream's chunks in the store.
func storedBytes(b *testing.B, rec *Recorder, s *Session) int64 {
	ctx := context.Background()
	rec.WaitIdle(ctx)
	m, _, err := SessionSource(rec.Store, s.Meta().ID, s.Meta().StartedAt).loadManifest(ctx)
	if err != nil || m == nil {
		b.Fatal("read the manifest:", err)
	}
	for _, st := range m.Streams {
		if st.Name == castStream(0) {
			return st.Bytes
		}
	}
	b.Fatal("no terminal stream in the manifest")
	return 0
}

// BenchmarkRecorderCPU measures the recorder's CPU time per MB of
// terminal output, all in: encoding asciicast, compressing, hashing and
// writing each chunk to a spool on disk, and sealing. The output is fed
// as fast as the recorder takes it without falling behind (the queue
// stays under a quarter of the buffer), so that every chunk is stored as
// configured rather than plain, as a busy interactive session's is;
// compressed-% says how many of the stream's chunks were (100 for zstd
// and gzip).
// Unlike BenchmarkRecordOutput it does not measure how fast the recorder
// can go, but what each MB costs.
func BenchmarkRecorderCPU(b *testing.B) {
	for _, comp := range benchCompressions {
		b.Run("typical/"+comp, func(b *testing.B) {
			rec := benchRecorder(b, b.TempDir(), comp)
			s, err := rec.Open(context.Background(), testMeta(fmt.Sprintf("cpu-%d", b.N)))
			if err != nil {
				b.Fatal(err)
			}
			ps := pieces(benchData["typical"]())
			b.SetBytes(relayRead)
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				for s.queued() > rec.bufferSize()/4 {
					time.Sleep(100 * time.Microsecond)
				}
				if err := s.Output(0, ps[i%len(ps)]); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Close(context.Background(), End{}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/(float64(b.N*relayRead)/1e6), "cpu-ns/MB")
			b.ReportMetric(compressedShare(b, rec, s), "compressed-%")
		})
	}
}

// queued is how many bytes wait in the session's queue for the flusher.
func (s *Session) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q.arena)
}

// compressedShare is the percentage of the terminal stream's chunks that
// are stored compressed (chunk/2).
func compressedShare(b *testing.B, rec *Recorder, s *Session) float64 {
	ctx := context.Background()
	rec.WaitIdle(ctx)
	src := SessionSource(rec.Store, s.Meta().ID, s.Meta().StartedAt)
	var all, compressed int
	_, err := src.walk(ctx, func(h ChunkHeader, _ *bufio.Reader) error {
		if h.Stream == castStream(0) {
			all++
			if h.Encoding != "" {
				compressed++
			}
		}
		return nil
	})
	if err != nil || all == 0 {
		b.Fatalf("read the recording: %v (%d chunks of terminal stream)", err, all)
	}
	return 100 * float64(compressed) / float64(all)
}

func memTempDirB(b *testing.B) string {
	dir := b.TempDir()
	if d, err := makeShmDir(); err == nil {
		b.Cleanup(func() { removeAll(d) })
		return d
	}
	return dir
}

// BenchmarkRelay compares relaying terminal output over loopback TCP with
// and without recording it. Both report the CPU time the process spent per
// MB relayed (user+system, every goroutine: relay, flusher, chunk writer,
// uploader). The recorded one first relays the same data unrecorded, so
// that overhead-% — the extra CPU per MB that recording costs, in percent
// of a bare relay's — compares figures taken moments apart.
func BenchmarkRelay(b *testing.B) {
	for _, kind := range benchKinds {
		for _, how := range append([]string{"plain"}, benchCompressions...) {
			name := kind + "/" + how
			if how != "plain" {
				name = kind + "/recorded-" + how
			}
			b.Run(name, func(b *testing.B) {
				ps := pieces(benchData[kind]())
				b.SetBytes(relayRead)
				b.ResetTimer()
				var plain float64
				if how != "plain" {
					b.StopTimer()
					plain = relayCPU(b, nil, ps)
					b.StartTimer()
				}
				cpu := relayCPU(b, recordedSession(b, how), ps)
				b.ReportMetric(cpu, "cpu-ns/MB")
				if how != "plain" {
					b.ReportMetric(100*(cpu-plain)/plain, "overhead-%")
				}
			})
		}
	}
}

func recordedSession(b *testing.B, compression string) *Session {
	if compression == "plain" {
		return nil
	}
	rec := benchRecorder(b, memTempDirB(b), compression)
	s, err := rec.Open(context.Background(), testMeta(fmt.Sprintf("relay-%d", b.N)))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// relayCPU relays b.N reads from ps through a relay teeing into s (when
// not nil) and returns the process's CPU time per MB, the recording
// sealed included.
func relayCPU(b *testing.B, s *Session, ps [][]byte) float64 {
	src, dst := relayPair(b, s)
	cpu0 := cpuTime()
	go func() {
		for i := range b.N {
			src.Write(ps[i%len(ps)])
		}
		src.(*net.TCPConn).CloseWrite()
	}()
	n, _ := io.Copy(io.Discard, dst)
	if s != nil {
		s.Close(context.Background(), End{})
	}
	return float64(cpuTime()-cpu0) / (float64(n) / 1e6)
}

// relayPair returns the client end and the far end of a relay: what the
// client writes crosses a relay goroutine (teeing into s when non-nil).
func relayPair(b *testing.B, s *Session) (net.Conn, net.Conn) {
	ln1, _ := net.Listen("tcp", "127.0.0.1:0")
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	b.Cleanup(func() { ln1.Close(); ln2.Close() })
	go func() {
		in, _ := ln1.Accept()
		out, _ := net.Dial("tcp", ln2.Addr().String())
		buf := make([]byte, 32<<10)
		for {
			n, err := in.Read(buf)
			if n > 0 {
				if s != nil {
					s.Output(0, buf[:n])
				}
				out.Write(buf[:n])
			}
			if err != nil {
				out.(*net.TCPConn).CloseWrite()
				return
			}
		}
	}()
	src, err := net.Dial("tcp", ln1.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	dst, err := ln2.Accept()
	if err != nil {
		b.Fatal(err)
	}
	return src, dst
}

func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkReplayText measures text replay of a recording.
func BenchmarkReplayText(b *testing.B) {
	rec := benchRecorder(b, memTempDirB(b), "")
	s, _ := rec.Open(context.Background(), testMeta("replay"))
	ps := pieces(benchData["typical"]())
	for i := range 1000 {
		s.Output(0, ps[i%len(ps)])
	}
	s.Close(context.Background(), End{})
	rec.WaitIdle(context.Background())
	src, err := FindSession(context.Background(), rec.Store, "replay")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(1000 * relayRead))
	for range b.N {
		if err := Replay(context.Background(), src, io.Discard, ReplayOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
