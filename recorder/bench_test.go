package recorder

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// benchPiece is one relay read of typical terminal output (ASCII with CR LF
// and a few escape sequences), 32000 bytes.
var benchPiece = bytes.Repeat([]byte("drwxr-xr-x  2 root root  4096 Nov 28 10:00 \x1b[01;34mbin\x1b[0m  some more text.\r\n"), 500)[:32000]

func benchRecorder(b *testing.B, dir string) *Recorder {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	store, err := NewFileStore(filepath.Join(dir, "store"))
	if err != nil {
		b.Fatal(err)
	}
	rec := &Recorder{Config: Config{DataDir: filepath.Join(dir, "data"), FlushInterval: time.Second},
		Store: store, Key: key}
	if err := rec.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rec.Shutdown(context.Background()) })
	return rec
}

// BenchmarkRecordOutput measures recording throughput of terminal output
// with flush_interval 1s, from the relay's write to the sealed spool.
func BenchmarkRecordOutput(b *testing.B) {
	for _, where := range []string{"disk", "tmpfs"} {
		b.Run(where, func(b *testing.B) {
			dir := b.TempDir()
			if where == "tmpfs" {
				dir = memTempDirB(b)
			}
			rec := benchRecorder(b, dir)
			s, err := rec.Open(context.Background(), testMeta(fmt.Sprintf("bench-%d", b.N)))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(benchPiece)))
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				if err := s.Output(0, benchPiece); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Close(context.Background(), End{}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/(float64(b.N*len(benchPiece))/1e6), "cpu-ns/MB")
		})
	}
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
// and without recording it, and reports the CPU time the process spent per
// MB relayed (user+system, both cores).
func BenchmarkRelay(b *testing.B) {
	for _, recorded := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "recorded"}[recorded], func(b *testing.B) {
			var s *Session
			if recorded {
				rec := benchRecorder(b, memTempDirB(b))
				var err error
				if s, err = rec.Open(context.Background(), testMeta(fmt.Sprintf("relay-%d", b.N))); err != nil {
					b.Fatal(err)
				}
			}
			src, dst := relayPair(b, s)
			b.SetBytes(int64(len(benchPiece)))
			cpu0 := cpuTime()
			b.ResetTimer()
			go func() {
				for range b.N {
					src.Write(benchPiece)
				}
				src.(*net.TCPConn).CloseWrite()
			}()
			n, _ := io.Copy(io.Discard, dst)
			if s != nil {
				s.Close(context.Background(), End{})
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/(float64(n)/1e6), "cpu-ns/MB")
		})
	}
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
	rec := benchRecorder(b, memTempDirB(b))
	s, _ := rec.Open(context.Background(), testMeta("replay"))
	for range 1000 {
		s.Output(0, benchPiece)
	}
	s.Close(context.Background(), End{})
	rec.WaitIdle(context.Background())
	src, err := FindSession(context.Background(), rec.Store, "replay")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(1000 * len(benchPiece)))
	for range b.N {
		if err := Replay(context.Background(), src, io.Discard, ReplayOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
