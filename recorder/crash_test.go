package recorder

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashChildEnv makes the test binary act as a bastion that is killed
// while recording (see TestCrashChild).
const crashChildEnv = "SALLYPORT_RECORDER_CRASH_CHILD"

// crashFlushed is how many markers the child writes and lets flush
// before it reports ready to be killed.
const crashFlushed = 300

// crashChild runs in a child process started by TestCrashRecovery (see
// TestMain): it records until it is SIGKILLed.
func crashChild(dir string) error {
	key, err := LoadOrCreateSigningKey(filepath.Join(dir, "key"))
	if err != nil {
		return err
	}
	store, err := NewFileStore(filepath.Join(dir, "store"))
	if err != nil {
		return err
	}
	rec := &Recorder{Config: Config{DataDir: filepath.Join(dir, "data"), FlushInterval: 50 * time.Millisecond},
		Store: store, Key: key, ChunkSize: 2048}
	if err := rec.Start(context.Background()); err != nil {
		return err
	}
	s, err := rec.Open(context.Background(), testMeta("s-crash"))
	if err != nil {
		return err
	}
	if err := s.Event(Event{Type: EventExec, Command: "make deploy"}); err != nil {
		return err
	}
	for i := range crashFlushed {
		if err := s.Output(0, fmt.Appendf(nil, "flushed %04d\r\n", i)); err != nil {
			return err
		}
	}
	time.Sleep(300 * time.Millisecond) // several flush intervals: all of it is in the spool
	fmt.Println("READY")
	for i := 0; ; i++ { // keep writing until killed; this tail may be lost
		s.Output(0, fmt.Appendf(nil, "tail %06d\r\n", i))
		time.Sleep(time.Millisecond)
	}
}

// TestCrashRecovery kills a recording bastion with SIGKILL; on restart the
// flushed part is recovered, uploaded, and verifies as incomplete but
// authentic.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitForLine(t, stdout, "READY", &stderr)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	err = cmd.Wait()
	require.Error(t, err, "the child must die by SIGKILL")

	key, err := LoadOrCreateSigningKey(filepath.Join(dir, "key"))
	require.NoError(t, err)
	store, err := NewFileStore(filepath.Join(dir, "store"))
	require.NoError(t, err)
	h := newHarness(t, filepath.Join(dir, "data"), store, key, nil)
	h.waitUploaded(t)
	assert.Equal(t, []State{StateUploading, StateIncomplete}, h.states.of("s-crash"))
	assert.Empty(t, spoolEntries(t, h), "recovered session is uploaded and leaves the spool")

	rep := h.verify(t, "s-crash")
	assert.Equal(t, StatusIncomplete, rep.Status, "crashed but authentic: %s", rep)
	assert.Empty(t, rep.Problems, "nothing of an authentic crashed recording looks tampered")
	assert.Contains(t, rep.Reason, "the bastion stopped while the session was live")

	src, err := FindSession(ctxT(t), store, "s-crash")
	require.NoError(t, err)
	var text bytes.Buffer
	require.NoError(t, Replay(ctxT(t), src, &text, ReplayOptions{}))
	for i := range crashFlushed {
		require.Contains(t, text.String(), fmt.Sprintf("flushed %04d\n", i), "flushed data must survive the crash")
	}
	assert.Contains(t, text.String(), "exec: make deploy")
}

func waitForLine(t *testing.T, r interface{ Read([]byte) (int, error) }, want string, stderr *bytes.Buffer) {
	t.Helper()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("child exited before %q; stderr: %s", want, stderr)
			}
			if strings.TrimSpace(l) == want {
				return
			}
		case <-timeout:
			t.Fatalf("child did not print %q within 20s; stderr: %s", want, stderr)
		}
	}
}
