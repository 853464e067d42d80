package recorder

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storedChunk is one chunk object as read from the file store.
type storedChunk struct {
	hdr     ChunkHeader
	payload []byte // as stored
}

func readStoredChunks(t *testing.T, dir string) []storedChunk {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"+chunkSuffix))
	require.NoError(t, err)
	var out []storedChunk
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		h, payload, finish, err := ReadChunk(bufio.NewReader(bytes.NewReader(b)))
		require.NoError(t, err, f)
		p, err := io.ReadAll(payload)
		require.NoError(t, err)
		require.NoError(t, finish())
		out = append(out, storedChunk{h, p})
	}
	return out
}

// TestChunksAreStoredCompressed records terminal output with each
// compression setting: zstd chunks (the default) hold one zstd frame and
// gzip chunks one gzip member each (read here with a plain decoder, not
// the recorder's), which decompress to exactly the exported asciicast and
// take much less room; "none" writes plain chunk/1 chunks. All verify and
// replay.
func TestChunksAreStoredCompressed(t *testing.T) {
	output := termSample(300 << 10)
	for _, tc := range []struct {
		compression, format, encoding string
	}{
		{"", chunkFormat, encodingZstd},
		{CompressionGzip, chunkFormat, encodingGzip},
		{CompressionNone, chunkFormatV1, ""},
	} {
		t.Run(tc.format+"/"+tc.encoding, func(t *testing.T) {
			h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) {
				r.Config.Compression, r.ChunkSize = tc.compression, 64<<10
			})
			s, err := h.rec.Open(ctxT(t), testMeta("s-gzip"))
			require.NoError(t, err)
			require.NoError(t, s.OpenTerminal(0, 120, 40, "xterm-256color"))
			for i := 0; i < len(output); i += relayRead {
				require.NoError(t, s.Output(0, output[i:min(i+relayRead, len(output))]))
			}
			require.NoError(t, s.Event(Event{Type: EventExec, Command: "ls -lR"}))
			require.NoError(t, s.Close(ctxT(t), End{ExitStatus: intp(0)}))
			h.waitUploaded(t)
			rep := h.verify(t, "s-gzip")
			require.Equal(t, StatusIntact, rep.Status, "report: %s", rep)

			src, err := FindSession(ctxT(t), h.store, "s-gzip")
			require.NoError(t, err)
			var cast bytes.Buffer
			require.NoError(t, ExportCast(ctxT(t), src, &cast, 0))
			var text bytes.Buffer
			require.NoError(t, Replay(ctxT(t), src, &text, ReplayOptions{}))
			assert.Contains(t, text.String(), "error: ")
			assert.Contains(t, text.String(), "exec: ls -lR")

			chunks := readStoredChunks(t, filepath.Join(h.store.(*FileStore).root, filepath.FromSlash(src.dir)))
			require.Greater(t, len(chunks), 2, "several chunks")
			var stream bytes.Buffer
			var stored int
			for _, c := range chunks {
				assert.Equal(t, tc.format, c.hdr.Format)
				assert.Equal(t, tc.encoding, c.hdr.Encoding)
				if c.hdr.Stream != castStream(0) {
					continue
				}
				stored += len(c.payload)
				stream.Write(plainPayload(t, tc.encoding, c.payload))
			}
			assert.Equal(t, cast.String(), stream.String(), "the stream is the payloads decompressed in seq order")
			if tc.encoding != "" {
				assert.Less(t, stored, len(output)/3, "compressed terminal output takes much less room")
			} else {
				assert.Greater(t, stored, len(output), "plain asciicast is larger than the output")
			}
		})
	}
}

// plainPayload decompresses a stored payload with the plain decoders of
// each format, as a tool other than sallyport would.
func plainPayload(t *testing.T, encoding string, payload []byte) []byte {
	t.Helper()
	switch encoding {
	case encodingGzip:
		zr, err := gzip.NewReader(bytes.NewReader(payload))
		require.NoError(t, err)
		data, err := io.ReadAll(zr)
		require.NoError(t, err)
		return data
	case encodingZstd:
		zr, err := zstd.NewReader(bytes.NewReader(payload))
		require.NoError(t, err)
		defer zr.Close()
		data, err := io.ReadAll(zr)
		require.NoError(t, err)
		return data
	}
	return payload
}

// TestVerifyCatchesDamagedLastChunk damages the payload of the last chunk
// of a live (unsealed) recording, which no manifest and no later chain
// link covers: the zstd frame's checksum still gives it away.
func TestVerifyCatchesDamagedLastChunk(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	s, err := h.rec.Open(ctxT(t), testMeta("s-live"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(context.Background(), End{}) })
	require.NoError(t, s.Output(0, termSample(20<<10)))
	var dir string
	require.Eventually(t, func() bool {
		src, err := FindSession(ctxT(t), h.store, "s-live")
		if err != nil {
			return false
		}
		dir = filepath.Join(h.store.(*FileStore).root, filepath.FromSlash(src.dir))
		_, err = os.Stat(filepath.Join(dir, chunkName(1)))
		return err == nil
	}, 5*time.Second, 10*time.Millisecond, "the live session's chunk reaches the store")
	require.NoError(t, h.rec.WaitIdle(ctxT(t)))
	before := h.verify(t, "s-live")
	require.Equal(t, StatusUnsealed, before.Status, "report: %s", before)

	p := filepath.Join(dir, chunkName(before.Chunks))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x10
	require.NoError(t, os.WriteFile(p, b, 0o600))
	rep := h.verify(t, "s-live")
	assert.Equal(t, StatusTampered, rep.Status, "report: %s", rep)
	require.NotEmpty(t, rep.Problems)
	assert.Equal(t, chunkName(before.Chunks), rep.Problems[0].Object)
	assert.Contains(t, rep.Problems[0].What, "payload does not decode", "report: %s", rep)
}

// TestJSONStringEscapesEveryByte puts every byte value at every offset of
// an 8-byte word (the escaper checks eight bytes at a time) and compares
// the decoded string with encoding/json's.
func TestJSONStringEscapesEveryByte(t *testing.T) {
	for c := range 256 {
		for pos := range 17 {
			in := append(bytes.Repeat([]byte("a"), pos), byte(c))
			in = append(in, "ü\x1b[0m tail"...)
			checkJSONString(t, in)
		}
	}
	for _, in := range [][]byte{termSample(64 << 10), randomSample(64 << 10), []byte("\xe2\x82"), []byte("€\xed\xa0\x80\xf4\x90\x80\x80")} {
		checkJSONString(t, in)
	}
}

func checkJSONString(t *testing.T, in []byte) {
	t.Helper()
	enc := appendJSONString([]byte("prefix"), in)
	require.True(t, strings.HasPrefix(string(enc), "prefix\""))
	var got string
	require.NoError(t, json.Unmarshal(enc[len("prefix"):], &got), "invalid JSON for %q", in)
	ref, _ := json.Marshal(string(in))
	var want string
	require.NoError(t, json.Unmarshal(ref, &want))
	if got != want {
		t.Fatalf("got %q, want %q for input %s", got, want, fmt.Sprintf("%q", in))
	}
}

// TestFallingBehindStoresPlainChunks stalls the spool once, so that the
// relay fills half the buffer: the chunks cut while the session is behind
// are stored plain (chunk/1) rather than slowing it further, and the
// recording, mixing both kinds, verifies and exports every byte.
func TestFallingBehindStoresPlainChunks(t *testing.T) {
	var once sync.Once
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) {
		r.ChunkSize, r.BufferSize = 16<<10, 256<<10
		r.beforeChunk = func() { once.Do(func() { time.Sleep(300 * time.Millisecond) }) }
	})
	s, err := h.rec.Open(ctxT(t), testMeta("s-behind"))
	require.NoError(t, err)
	output := termSample(600 << 10)
	for i := 0; i < len(output); i += relayRead {
		require.NoError(t, s.Output(0, output[i:min(i+relayRead, len(output))]))
	}
	require.NoError(t, s.Close(ctxT(t), End{}))
	h.waitUploaded(t)
	rep := h.verify(t, "s-behind")
	require.Equal(t, StatusIntact, rep.Status, "report: %s", rep)
	assert.Equal(t, int64(len(output)), rep.Manifest.Counts.OutputBytes)

	src, err := FindSession(ctxT(t), h.store, "s-behind")
	require.NoError(t, err)
	formats := map[string]int{}
	for _, c := range readStoredChunks(t, filepath.Join(h.store.(*FileStore).root, filepath.FromSlash(src.dir))) {
		formats[c.hdr.Format]++
	}
	assert.Positive(t, formats[chunkFormat], "compressed while keeping up: %v", formats)
	assert.Positive(t, formats[chunkFormatV1], "plain while behind: %v", formats)
	var text bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &text, ReplayOptions{Format: FormatJSON}))
	var got []byte
	for _, line := range bytes.Split(text.Bytes(), []byte("\n")) {
		var rec jsonRecord
		if json.Unmarshal(line, &rec) == nil && rec.Type == "output" {
			got = append(got, rec.Data...)
		}
	}
	assert.Equal(t, string(output), string(got), "every byte of output replays, in order")
}

// TestHostileZstdWindowIsRefused stores chunks whose zstd frame claims a
// 256 MiB window (or a 256 MiB single-segment frame), which the zstd
// library would allocate by default: verify reports them as not decoding
// instead of allocating what the header asks for.
func TestHostileZstdWindowIsRefused(t *testing.T) {
	block := []byte{byte(5<<3 | 1), 0, 0, 'h', 'e', 'l', 'l', 'o'} // last raw block of 5 bytes
	frames := map[string][]byte{
		"window 256 MiB":         append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 18 << 3}, block...),
		"single segment 256 MiB": append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0, 0, 0, 0x10}, block...),
	}
	for name, frame := range frames {
		t.Run(name, func(t *testing.T) {
			hdr := ChunkHeader{Format: chunkFormat, Seq: 1, Stream: castStream(0), Encoding: encodingZstd,
				Size: int64(len(frame)), Prev: strings.Repeat("0", 64)}
			line, err := json.Marshal(hdr)
			require.NoError(t, err)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err = scanChunk(bytes.NewReader(append(append(line, '\n'), frame...)))
			runtime.ReadMemStats(&after)
			require.Error(t, err, "a frame that wants 256 MiB decoded")
			assert.Contains(t, err.Error(), "payload does not decode")
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(maxZstdWindow+(4<<20)), "bytes allocated to read the chunk")
		})
	}
}
