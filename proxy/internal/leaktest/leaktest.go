// Package leaktest finds secrets where a bastion keeps things: every file
// under a directory (recording chunks decompressed) and captured logs.
// The database proxies' tests use it to show that a password a session
// sent is nowhere on disk or in the log.
package leaktest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Log captures what a logger writes, at every level, for Leaks.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Logger writes to l, debug lines included.
func (l *Log) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Bytes is what was logged so far.
func (l *Log) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.buf.Bytes())
}

// Leaks lists each secret found in a file under dirs or in logs, as
// "where: secret"; none is empty.
func Leaks(t testing.TB, dirs []string, logs []byte, secrets []string) []string {
	t.Helper()
	var out []string
	check := func(where string, b []byte) {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				out = append(out, where+": "+s)
			}
		}
	}
	files := 0
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			check(path, b)
			if plain, ok := chunkPayload(b); ok {
				check(path+" (decompressed)", plain)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", dir, err)
		}
	}
	if files == 0 {
		t.Fatalf("no files under %s: nothing was looked at", strings.Join(dirs, ", "))
	}
	check("log", logs)
	return out
}

// chunkPayload is a recording chunk's payload, decompressed; false when
// b is no chunk/2 with a zstd or gzip payload (see docs/recordings.md).
func chunkPayload(b []byte) ([]byte, bool) {
	r := bufio.NewReader(bytes.NewReader(b))
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, false
	}
	var hdr struct {
		Encoding string `json:"encoding"`
	}
	if json.Unmarshal(line, &hdr) != nil {
		return nil, false
	}
	var z io.Reader
	switch hdr.Encoding {
	case "zstd":
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, false
		}
		defer zr.Close()
		z = zr
	case "gzip":
		if z, err = gzip.NewReader(r); err != nil {
			return nil, false
		}
	default:
		return nil, false
	}
	plain, err := io.ReadAll(z)
	return plain, err == nil
}
