package recorder

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// readBufferSize is the read buffer of every object reader: readers
// stream, so this (and one event line) is what a reader holds in memory.
const readBufferSize = 64 << 10

// Source is one recording to read: a session directory in a store.
type Source struct {
	store Store
	dir   string
	id    string
}

// ID returns the session id the source was opened for; empty for DirSource.
func (s Source) ID() string { return s.id }

// label names the recording in errors.
func (s Source) label() string {
	if s.id != "" {
		return s.id
	}
	return "recording"
}

// SessionSource names the recording of session id started at started in
// store, as the session index knows it (see StateChange.Dir).
func SessionSource(store Store, id string, started time.Time) Source {
	return Source{store: store, dir: SessionDir(id, started), id: id}
}

// FindSession looks the recording of session id up by listing the store.
// It costs one listing of every object; callers that know when the session
// started (the session index does) should use SessionSource.
func FindSession(ctx context.Context, store Store, id string) (Source, error) {
	if err := validSessionID(id); err != nil {
		return Source{}, err
	}
	keys, err := store.List(ctx, "")
	if err != nil {
		return Source{}, fmt.Errorf("find session %s: %w", id, err)
	}
	for _, k := range keys {
		parts := strings.Split(k, "/")
		if len(parts) == 5 && parts[3] == id {
			return Source{store: store, dir: strings.Join(parts[:4], "/") + "/", id: id}, nil
		}
	}
	return Source{}, fmt.Errorf("find session %s: %w", id, ErrNotFound)
}

// DirSource opens a recording copied to a local directory (the objects of
// one session side by side, as in the store). The directory's name does not
// matter: the session id is taken from the manifest.
func DirSource(path string) (Source, error) {
	info, err := os.Stat(path)
	if err != nil {
		return Source{}, fmt.Errorf("open recording directory: %w", err)
	}
	if !info.IsDir() {
		return Source{}, fmt.Errorf("open recording directory: %s is not a directory", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Source{}, fmt.Errorf("open recording directory: %w", err)
	}
	return Source{store: &FileStore{root: abs}}, nil
}

func (s Source) open(ctx context.Context, name string) (io.ReadCloser, error) {
	return s.store.Get(ctx, s.dir+name)
}

// names lists the object names of the session.
func (s Source) names(ctx context.Context) ([]string, error) {
	keys, err := s.store.List(ctx, s.dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if name := k[len(s.dir):]; !strings.Contains(name, "/") {
			out = append(out, name)
		}
	}
	return out, nil
}

// readSmall reads a whole object of at most limit bytes.
func (s Source) readSmall(ctx context.Context, name string, limit int64) ([]byte, error) {
	rc, err := s.open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", name, limit)
	}
	return b, nil
}

// hashingReader hashes and counts everything read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newHashingReader(r io.Reader) *hashingReader {
	return &hashingReader{r: r, h: sha256.New()}
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashingReader) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// chainOrder is the chunk names to read, from the manifest when there is
// one and from the listing otherwise (a live or damaged recording).
func (s Source) chainOrder(ctx context.Context, m *Manifest) ([]string, error) {
	if m != nil {
		objs, err := s.sealedChain(ctx, m)
		names := make([]string, 0, len(objs))
		for _, o := range objs {
			names = append(names, o.Name)
		}
		return names, err
	}
	all, err := s.names(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range all {
		if _, ok := chunkSeq(n); ok {
			names = append(names, n)
		}
	}
	return names, nil
}

// loadManifest returns the parsed manifest, or nil when there is none.
func (s Source) loadManifest(ctx context.Context) (*Manifest, []byte, error) {
	body, err := s.readSmall(ctx, manifestObject, maxManifestSize)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	m, err := ParseManifest(body)
	if err != nil {
		return nil, body, err
	}
	return &m, body, nil
}

// chunkFunc receives each chunk's header and a reader of its payload.
type chunkFunc func(h ChunkHeader, payload *bufio.Reader) error

// walk streams every chunk in chain order to fn, checking each link of the
// hash chain as it goes; it stops at the first broken link.
func (s Source) walk(ctx context.Context, fn chunkFunc) (SessionMeta, error) {
	var meta SessionMeta
	m, _, err := s.loadManifest(ctx)
	if err != nil {
		return meta, err
	}
	metaBody, err := s.readSmall(ctx, sessionObject, maxManifestSize)
	if err != nil {
		return meta, fmt.Errorf("read session.json: %w", err)
	}
	if err := json.Unmarshal(metaBody, &meta); err != nil {
		return meta, fmt.Errorf("parse session.json: %w", err)
	}
	names, err := s.chainOrder(ctx, m)
	if err != nil {
		return meta, err
	}
	sum := sha256.Sum256(metaBody)
	prev := hex.EncodeToString(sum[:])
	for _, name := range names {
		if prev, err = s.walkChunk(ctx, name, prev, fn); err != nil {
			return meta, err
		}
	}
	return meta, nil
}

func (s Source) walkChunk(ctx context.Context, name, prev string, fn chunkFunc) (string, error) {
	seq, _ := chunkSeq(path.Base(name)) // a continuation's chunks are below continuationDir
	rc, err := s.open(ctx, name)
	if err != nil {
		return "", fmt.Errorf("chunk %d: %w", seq, err)
	}
	defer rc.Close()
	hr := newHashingReader(rc)
	br := bufio.NewReaderSize(hr, readBufferSize)
	h, payload, finish, err := ReadChunk(br)
	if err != nil {
		return "", fmt.Errorf("chunk %d: %w", seq, err)
	}
	if h.Prev != prev || h.Seq != seq {
		return "", fmt.Errorf("chunk %d: breaks the hash chain (holds seq %d); run verify", seq, h.Seq)
	}
	data, err := decodePayload(h, payload)
	if err != nil {
		return "", fmt.Errorf("chunk %d: %w; run verify", seq, err)
	}
	pr := bufio.NewReaderSize(data, readBufferSize)
	if err := fn(h, pr); err != nil {
		return "", err
	}
	if _, err := io.Copy(io.Discard, pr); err != nil {
		return "", fmt.Errorf("chunk %d: %w; run verify", seq, err)
	}
	if err := finish(); err != nil {
		return "", fmt.Errorf("chunk %d: %w", seq, err)
	}
	return hr.sum(), nil
}
