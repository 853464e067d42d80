package recorder

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// raceStores are the stores the seal races run on: the file store and
// the tests' S3 endpoint (gofakes3), which honours If-None-Match.
var raceStores = map[string]func(t *testing.T) Store{
	"file": func(t *testing.T) Store { return fileStore(t) },
	"s3":   func(t *testing.T) Store { return startFakeS3(t).store(t) },
}

// TestCreateIsExclusive: of writers creating one key at once with
// different bytes, exactly one succeeds and the others are told
// ErrExists; the object holds the winner's bytes; creating the same bytes
// again succeeds.
func TestCreateIsExclusive(t *testing.T) {
	for name, mk := range raceStores {
		t.Run(name, func(t *testing.T) {
			store := mk(t)
			c := store.(Creator)
			const key, writers = "2026/11/28/s-x/manifest.json", 8
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					body := fmt.Appendf(nil, "manifest of writer %d\n", i)
					errs[i] = c.Create(ctxT(t), key, bytes.NewReader(body), int64(len(body)))
				})
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				if err == nil {
					require.Equal(t, -1, winner, "two writers created %s: %d and %d", key, winner, i)
					winner = i
					continue
				}
				assert.ErrorIs(t, err, ErrExists, "writer %d", i)
			}
			require.NotEqual(t, -1, winner, "nobody created %s: %v", key, errs)
			want := fmt.Appendf(nil, "manifest of writer %d\n", winner)
			assert.Equal(t, want, readObject(t, store, key))
			assert.NoError(t, c.Create(ctxT(t), key, bytes.NewReader(want), int64(len(want))), "a retry of the same bytes")
			keys, err := store.List(ctxT(t), "2026/")
			require.NoError(t, err)
			assert.Equal(t, []string{key}, keys, "no temporary objects are left")
		})
	}
}

// TestWriteSealRace: two seals of one recording written at once; exactly
// one manifest is stored, with its own signature.
func TestWriteSealRace(t *testing.T) {
	key := testKey(t)
	for name, mk := range raceStores {
		t.Run(name, func(t *testing.T) {
			store := mk(t)
			const dir = "2026/11/28/s-y/"
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Go(func() {
					body, sig, err := signedManifest(map[string]int{"writer": i}, key)
					require.NoError(t, err)
					errs[i] = writeSeal(ctxT(t), store, dir, sig, body)
				})
			}
			wg.Wait()
			assert.True(t, errs[0] == nil != (errs[1] == nil), "exactly one seal is written: %v", errs)
			body := readObject(t, store, dir+manifestObject)
			sig := readObject(t, store, dir+sigObject)
			assert.NoError(t, checkManifestSig(key.Public().(ed25519.PublicKey), body, sig), "the signature is the manifest's")
		})
	}
}

// raceStore lets a test stop a writer just before it creates the
// signature of session id, and run the other sealer there. It keeps the
// file store's abilities (Creator, and linking and moving spool files).
type raceStore struct {
	Store
	id string
	// beforeSig runs before the signature is created; afterManifest after
	// the manifest was (both once, nil: nothing).
	beforeSig, afterManifest func()
	once, onceAfter          sync.Once
}

func (s *raceStore) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	if strings.HasSuffix(key, "/"+s.id+"/"+sigObject) && s.beforeSig != nil {
		s.once.Do(s.beforeSig)
	}
	err := s.Store.(Creator).Create(ctx, key, r, size)
	if strings.HasSuffix(key, "/"+s.id+"/"+manifestObject) && err == nil && s.afterManifest != nil {
		s.onceAfter.Do(s.afterManifest)
	}
	return err
}

func (s *raceStore) linkFile(key, path string, synced bool) error {
	if l, ok := s.Store.(fileLinker); ok {
		return l.linkFile(key, path, synced)
	}
	return errors.New("not a file store")
}

func (s *raceStore) moveDir(keyDir, dir string) error {
	if l, ok := s.Store.(fileLinker); ok {
		return l.moveDir(keyDir, dir)
	}
	return errors.New("not a file store")
}

// raceSetup is a session a replica recorded part of to the store and
// kept the rest of in its spool when it died; backDir holds a copy of
// that spool, for the replica coming back.
type raceSetup struct {
	store   Store
	key     ed25519.PrivateKey
	backDir string
}

const raceID = "s-race"

func newRaceSetup(t *testing.T, store Store) raceSetup {
	t.Helper()
	down := &switchStore{Store: store}
	rs := raceSetup{store: store, key: testKey(t), backDir: t.TempDir()}
	lost := newHarness(t, t.TempDir(), down, rs.key, func(r *Recorder) { r.ChunkSize = 1024 })
	t.Cleanup(func() { down.down.Store(false) }) // lets the lost replica's harness shut down
	s, err := lost.rec.Open(ctxT(t), testMeta(raceID))
	require.NoError(t, err)
	write := func(what string) {
		for i := range 200 {
			require.NoError(t, s.Output(0, fmt.Appendf(nil, "%s %04d\r\n", what, i)))
		}
	}
	write("uploaded")
	time.Sleep(150 * time.Millisecond) // a few flushes: it is all in chunks
	lost.waitUploaded(t)
	down.down.Store(true)
	write("spooled")
	waitFor(t, func() bool { return metricValue(t, lost.rec.Metrics, "sallyport_recorder_upload_failures_total") > 0 },
		"the chunks after the outage stay in the spool: %s", lost.logs)
	time.Sleep(200 * time.Millisecond) // several flushes: everything written is in the spool
	copyTree(t, lost.rec.Config.SpoolDir(), filepath.Join(rs.backDir, "spool"))
	return rs
}

// sealInBackground runs the survivor's SealFromStore until it is about to
// create the signature (it has read the store by then), and returns
// release, which lets it go on, and its result.
func (rs raceSetup) sealInBackground(t *testing.T) (release func(), result func() (SealResult, error)) {
	ready, proceed, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	b := &raceStore{Store: rs.store, id: raceID, beforeSig: func() { close(ready); <-proceed }}
	var res SealResult
	var err error
	go func() {
		defer close(done)
		res, err = SealFromStore(context.Background(), b, rs.key, raceID, testMeta(raceID).StartedAt, lostReason)
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatalf("the survivor's seal ended before it wrote anything: %+v, %v", res, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the survivor's seal never reached its signature")
	}
	var once sync.Once
	release = func() { once.Do(func() { close(proceed) }) }
	t.Cleanup(release)
	return release, func() (SealResult, error) {
		release()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("the survivor's seal did not end")
		}
		return res, err
	}
}

// TestSealRaceReplicaLoses: a survivor has read the store to seal the
// session of a replica it took for lost; the replica comes back and
// uploads its spool; the survivor's seal is created first. The replica's
// seal is refused, the survivor's manifest stands, and the replica's
// chunks go beside it as a continuation: verify passes, replay joins.
func TestSealRaceReplicaLoses(t *testing.T) {
	for name, mk := range raceStores {
		t.Run(name, func(t *testing.T) {
			rs := newRaceSetup(t, mk(t))
			_, result := rs.sealInBackground(t)
			var res SealResult
			var sealErr error
			a := &raceStore{Store: rs.store, id: raceID, beforeSig: func() { res, sealErr = result() }}
			back := newHarness(t, rs.backDir, a, rs.key, nil)
			back.waitUploaded(t)
			require.NoError(t, sealErr)
			require.True(t, res.Sealed, "the survivor sealed first: %+v", res)

			src, err := FindSession(ctxT(t), rs.store, raceID)
			require.NoError(t, err)
			stored := readObject(t, rs.store, src.dir+manifestObject)
			m, err := ParseManifest(stored)
			require.NoError(t, err)
			assert.Equal(t, res.Manifest.Reason, m.Reason, "the survivor's manifest stands")
			assert.Equal(t, []State{StateUploading, StateIncomplete}, back.states.of(raceID))
			assert.Contains(t, back.logs.String(), "another replica sealed this session from the store meanwhile")

			rep := back.verify(t, raceID)
			require.Equal(t, StatusIncomplete, rep.Status, "%s", rep)
			require.NotNil(t, rep.Continuation, "the replica's chunks are a continuation: %s", rep)
			assert.Empty(t, rep.Problems)
			var out bytes.Buffer
			require.NoError(t, Replay(ctxT(t), src, &out, ReplayOptions{Format: FormatText}))
			assert.Contains(t, out.String(), "spooled 0199", "replay joins the continuation")

			// The replica's copies beside the sealed chunks pass only as
			// the continuation's chunks, byte for byte.
			forged := src.dir + chunkName(rep.Continuation.FirstSeq)
			require.NoError(t, rs.store.Put(ctxT(t), forged, strings.NewReader("forged\n"), 7))
			rep = back.verify(t, raceID)
			assert.Equal(t, StatusTampered, rep.Status, "%s", rep)
			assert.Contains(t, rep.String(), chunkName(rep.Continuation.FirstSeq)+"): not named by the manifest")
		})
	}
}

// TestSealRaceSurvivorLoses: the same race, won by the replica come back:
// its seal is stored; the survivor's is refused, writes nothing, and
// reports the replica's manifest.
func TestSealRaceSurvivorLoses(t *testing.T) {
	for name, mk := range raceStores {
		t.Run(name, func(t *testing.T) {
			rs := newRaceSetup(t, mk(t))
			release, result := rs.sealInBackground(t)
			a := &raceStore{Store: rs.store, id: raceID, afterManifest: release}
			back := newHarness(t, rs.backDir, a, rs.key, nil)
			back.waitUploaded(t)
			res, err := result()
			require.NoError(t, err)
			assert.False(t, res.Sealed)
			require.True(t, res.Already, "the survivor finds the replica's seal: %+v", res)

			src, err := FindSession(ctxT(t), rs.store, raceID)
			require.NoError(t, err)
			m, err := ParseManifest(readObject(t, rs.store, src.dir+manifestObject))
			require.NoError(t, err)
			assert.Equal(t, m, res.Manifest, "the survivor reports the manifest that stands")
			assert.NotContains(t, m.Reason, lostReason, "it is the replica's own seal")
			rep := back.verify(t, raceID)
			require.Equal(t, StatusIncomplete, rep.Status, "%s", rep)
			assert.Nil(t, rep.Continuation)
			assert.Empty(t, rep.Problems)
			var out bytes.Buffer
			require.NoError(t, Replay(ctxT(t), src, &out, ReplayOptions{Format: FormatText}))
			assert.Contains(t, out.String(), "spooled 0199")
		})
	}
}

func readObject(t *testing.T, store Store, key string) []byte {
	t.Helper()
	rc, err := store.Get(ctxT(t), key)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}
