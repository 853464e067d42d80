package recorder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goldenDir is a recording made by this package, kept to catch format
// changes and to seed the fuzzers.
const goldenDir = "../testdata/recorder/golden"

// goldenRecording is a recording made by an earlier build, with its public key.
type goldenRecording struct {
	dir, id string
	format  string // what its chunks are
}

// goldens are the recordings every later build must still read: chunk/1
// (before compression) and chunk/2 with gzip (before zstd).
var goldens = []goldenRecording{
	{goldenDir, "s-golden", "chunk/1"},
	{"../testdata/recorder/golden-gzip", "s-golden-gzip", "chunk/2 gzip"},
}

func addSeeds(f *testing.F, pattern string) {
	var files []string
	for _, g := range goldens {
		more, err := filepath.Glob(filepath.Join(g.dir, g.id, pattern))
		require.NoError(f, err)
		files = append(files, more...)
	}
	require.NotEmpty(f, files, "seed corpus %s", pattern)
	for _, p := range files {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
}

func FuzzReadChunk(f *testing.F) {
	addSeeds(f, "*.chunk")
	f.Add([]byte(`{"sallyport":"chunk/1","seq":1,"stream":"pty-0.cast","prev":"` + string(bytes.Repeat([]byte("0"), 64)) + `","size":99999999999}` + "\n"))
	line := []byte(`[0.5, "o", "hi"]` + "\n")
	for enc, payload := range map[string][]byte{encodingGzip: appendGzip(nil, line), encodingZstd: appendZstd(nil, line)} {
		f.Add(append(fmt.Appendf(nil, `{"sallyport":"chunk/2","seq":1,"stream":"pty-0.cast","prev":"%064d","encoding":"%s","size":%d}`+"\n",
			0, enc, len(payload)), payload...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		h, payload, finish, err := ReadChunk(br)
		if err != nil {
			return
		}
		var stored bytes.Buffer
		n, err := io.Copy(&stored, payload)
		require.NoError(t, err)
		if dec, err := decodePayload(h, &stored); err == nil {
			io.CopyN(io.Discard, dec, 64<<20) // must not panic; errors are the reader's to report
		}
		if finish() == nil {
			assert.Equal(t, h.Size, n, "payload length")
			assert.LessOrEqual(t, n, int64(len(data)), "payload cannot exceed the input")
		} else {
			assert.Less(t, n+1, int64(len(data))+2)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	addSeeds(f, "manifest.json")
	f.Add([]byte(`{"sallyport":"manifest/1","objects":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		require.Equal(t, sessionObject, m.Objects[0].Name)
		again, err := json.Marshal(m)
		require.NoError(t, err)
		m2, err := ParseManifest(again)
		require.NoError(t, err, "a parsed manifest re-encodes to a valid one")
		assert.Equal(t, len(m.Objects), len(m2.Objects))
	})
}

// FuzzCastEventRoundTrip checks the recorder's JSON string encoder and the
// replay's fast decoder against encoding/json for arbitrary terminal bytes.
func FuzzCastEventRoundTrip(f *testing.F) {
	for _, s := range []string{"plain", "gr\xc3\xbc\xc3\x9f", "\x1b[1m\r\n\t\"\\", "\xff\xfe", "\U0001F600", "\x00\x7f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		line := appendCastEvent(nil, 1500000, 'o', data)
		var want []any
		require.NoError(t, json.Unmarshal(line, &want), "encoder wrote invalid JSON: %q", line)
		ref, _ := json.Marshal(string(data))
		var refStr string
		require.NoError(t, json.Unmarshal(ref, &refStr))
		assert.Equal(t, refStr, want[2], "encoded data decodes like encoding/json's")
		var ev castEvent
		require.NoError(t, parseCastEvent(line, &ev))
		assert.Equal(t, refStr, string(ev.data), "fast decoder agrees with encoding/json")
		assert.Equal(t, "o", ev.code)
		assert.InDelta(t, 0.0015, ev.t, 1e-9)
	})
}

// FuzzParseCastEvent feeds arbitrary lines, as a crafted chunk in the
// store holds them, to the decoder every reader (replay, verify's
// recovery, the search feed, the live tail) uses: it returns an error or
// an event, never panics, and agrees with encoding/json on what it
// accepts.
func FuzzParseCastEvent(f *testing.F) {
	for _, s := range []string{`[0.5, "o", "hi"]`, `[000, "0", "]`, `[1, "o", ""]`, `[1, "r", "80x24"]`, `[1,"o","x"]`, `[`, ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var ev castEvent
		if parseCastEvent(line, &ev) != nil {
			return
		}
		var want []any
		if err := json.Unmarshal(bytes.TrimRight(line, "\n"), &want); err == nil && len(want) == 3 {
			if s, ok := want[2].(string); ok {
				assert.Equal(t, s, string(ev.data), "decoded data of %q", line)
			}
		}
	})
}

// TestGoldenRecordingVerifies keeps the on-disk format stable: recordings
// made by earlier builds, one of chunk/1 chunks (stored plain) and one of
// chunk/2 chunks with gzip payloads, verify with only their public key and
// replay.
func TestGoldenRecordingVerifies(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.format, func(t *testing.T) {
			line, err := os.ReadFile(filepath.Join(g.dir, "public_key"))
			require.NoError(t, err)
			pub, err := ParsePublicKey(line)
			require.NoError(t, err)
			src, err := DirSource(copyGoldenDir(t, g)) // under another directory name
			require.NoError(t, err)
			rep, err := Verify(ctxT(t), src, pub)
			require.NoError(t, err)
			assert.Equal(t, StatusIntact, rep.Status, "report: %s", rep)
			assert.Equal(t, g.id, rep.Session, "the session id comes from the manifest")
			var text bytes.Buffer
			require.NoError(t, Replay(ctxT(t), src, &text, ReplayOptions{}))
			assert.Contains(t, text.String(), "grüß bold")
			assert.Contains(t, text.String(), "exec: uptime")
		})
	}
}
