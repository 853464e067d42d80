package recorder

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestZeroTerminalSizeRecordsDefault opens a pty of 0x0, as `ssh -tt`
// from a non-terminal requests, and resizes it to sizes with a 0 in them:
// the cast says 80x24 where the client said 0, as terminals assume, so
// players do not draw a screen of no size.
func TestZeroTerminalSizeRecordsDefault(t *testing.T) {
	h := newHarness(t, t.TempDir(), fileStore(t), testKey(t), nil)
	s, err := h.rec.Open(ctxT(t), testMeta("s-nosize"))
	require.NoError(t, err)
	require.NoError(t, s.OpenTerminal(0, 0, 0, "xterm"))
	require.NoError(t, s.Output(0, []byte("hello\r\n")))
	for _, size := range [][2]int{{0, 0}, {132, 0}, {0, 50}, {100, 30}} {
		require.NoError(t, s.Resize(0, size[0], size[1]))
	}
	require.NoError(t, s.Close(ctxT(t), End{}))
	h.waitUploaded(t)
	src, err := FindSession(ctxT(t), h.store, "s-nosize")
	require.NoError(t, err)
	var cast bytes.Buffer
	require.NoError(t, ExportCast(ctxT(t), src, &cast, 0))

	lines := bytes.Split(bytes.TrimSpace(cast.Bytes()), []byte("\n"))
	var hdr struct{ Width, Height int }
	require.NoError(t, json.Unmarshal(lines[0], &hdr), "header %s", lines[0])
	assert.Equal(t, 80, hdr.Width, "header width, got %s", lines[0])
	assert.Equal(t, 24, hdr.Height, "header height, got %s", lines[0])
	var resizes []string
	for _, l := range lines[1:] {
		var ev []any
		require.NoError(t, json.Unmarshal(l, &ev))
		if ev[1] == "r" {
			resizes = append(resizes, ev[2].(string))
		}
	}
	assert.Equal(t, []string{"80x24", "132x24", "80x50", "100x30"}, resizes)
}
