package recorder

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStoredIsReportedLast: a session index written from OnState must end
// at stored, even when the index write for uploading is slow: the uploader
// may only report stored after uploading was reported.
func TestStoredIsReportedLast(t *testing.T) {
	var h *harness
	h = newHarness(t, t.TempDir(), fileStore(t), testKey(t), func(r *Recorder) {
		r.OnState = func(c StateChange) {
			if c.State == StateUploading {
				time.Sleep(200 * time.Millisecond) // a slow index write
			}
			h.states.record(c)
		}
	})
	s, err := h.rec.Open(ctxT(t), testMeta("s-order"))
	require.NoError(t, err)
	require.NoError(t, s.Output(0, []byte("hello\r\n")))
	require.NoError(t, s.Close(ctxT(t), End{ExitStatus: intp(0), Reason: "client closed"}))
	h.waitUploaded(t)
	assert.Equal(t, []State{StateLive, StateUploading, StateStored}, h.states.of("s-order"))
}
