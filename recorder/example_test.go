package recorder_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"time"

	"github.com/sallyport/sallyport/recorder"
)

// Example shows what a proxy does with a session, and what an auditor does
// with the recording afterwards.
func Example() {
	ctx := context.Background()
	dataDir, _ := os.MkdirTemp("", "recorder-example-")
	defer os.RemoveAll(dataDir)

	cfg := recorder.Config{DataDir: dataDir, FailClosed: true}
	key, err := recorder.LoadOrCreateSigningKey(cfg.KeyFile())
	if err != nil {
		panic(err)
	}
	store, err := recorder.NewStore(cfg)
	if err != nil {
		panic(err)
	}
	rec := &recorder.Recorder{Config: cfg, Store: store, Key: key,
		OnState: func(c recorder.StateChange) { fmt.Println("index:", c.Meta.ID, c.State) }}
	if err := rec.Start(ctx); err != nil {
		panic(err)
	}

	// The proxy side.
	s, err := rec.Open(ctx, recorder.SessionMeta{ID: "s-example", Identity: "svc-backup",
		Target: "web-01", Protocol: "ssh", Login: "backup", StartedAt: time.Now()})
	if err != nil {
		panic(err)
	}
	s.OpenTerminal(0, 80, 24, "xterm")
	if err := s.Output(0, []byte("backup done\r\n")); err != nil {
		// ErrRecordingFailed: with fail_closed, end the session here.
		panic(err)
	}
	s.Event(recorder.Event{Type: recorder.EventExec, Command: "backup --all"})
	status := 0
	s.Close(ctx, recorder.End{ExitStatus: &status})
	rec.Shutdown(ctx) // waits for the uploads

	// The auditor side.
	src, err := recorder.FindSession(ctx, store, "s-example")
	if err != nil {
		panic(err)
	}
	rep, err := recorder.Verify(ctx, src, key.Public().(ed25519.PublicKey))
	if err != nil {
		panic(err)
	}
	fmt.Println("verify:", rep.Status)
	// Output:
	// index: s-example live
	// index: s-example uploading
	// index: s-example stored
	// verify: intact
}
