package recorder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// ErrNotFound is returned by Store.Get for a key that does not exist.
var ErrNotFound = errors.New("object not found")

// ErrExists is returned by Creator.Create for a key that holds an object
// with other bytes: another writer created it first.
var ErrExists = errors.New("object exists with other content")

// Store is where recordings are kept. Keys are slash-separated and relative
// to the store's own prefix or root directory.
type Store interface {
	// Put stores exactly size bytes from r under key, replacing any object
	// there; it returns only once the store has them durably.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the object at key; ErrNotFound (wrapped) when absent.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns every key that starts with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// Creator is the optional ability of a store to create an object only
// where there is none, atomically: the file store by a hard link, which
// never replaces, S3 by a conditional PutObject (If-None-Match: *). A
// recording's signature and manifest are written so (createObject): two
// replicas sealing one session cannot replace each other's signed
// manifest, the second is told ErrExists.
type Creator interface {
	// Create stores exactly size bytes from r under key unless an object
	// is there. One there with the same bytes is success (a retry); one
	// with other bytes is left as it is, and the error wraps ErrExists.
	Create(ctx context.Context, key string, r io.Reader, size int64) error
}

// createObject stores data under key unless an object is there, with the
// store's Create. A store without it is asked first and then written: the
// manifest check of the callers, with a window between the two open.
func createObject(ctx context.Context, store Store, key string, data []byte) error {
	if c, ok := store.(Creator); ok {
		return c.Create(ctx, key, bytes.NewReader(data), int64(len(data)))
	}
	if err := existingObject(ctx, store, key, data); !errors.Is(err, ErrNotFound) {
		return err
	}
	return store.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
}

// existingObject compares the object at key with data: nil when it holds
// exactly data, ErrExists (wrapped) when it holds something else,
// ErrNotFound (wrapped) when there is none.
func existingObject(ctx context.Context, store Store, key string, data []byte) error {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	have, err := io.ReadAll(io.LimitReader(rc, int64(len(data))+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if !bytes.Equal(have, data) {
		return fmt.Errorf("create %s: %w", key, ErrExists)
	}
	return nil
}

// fileLinker is the optional ability of a store to take spool files
// without copying them: the file store on the spool's filesystem.
type fileLinker interface {
	// linkFile makes the file at path durably the object key by a hard
	// link; synced says its data is durable already.
	linkFile(key, path string, synced bool) error
	// moveDir makes the sealed spool directory dir, whose files are all
	// durable and all objects, the session directory keyDir by renaming
	// it; it fails, changing nothing, when keyDir exists with objects or
	// is on another filesystem.
	moveDir(keyDir, dir string) error
}

// NewStore opens the store cfg names: the file store under DataDir, or S3.
func NewStore(cfg Config) (Store, error) {
	if cfg.Store == StoreS3 {
		return NewS3Store(cfg.S3)
	}
	fs, err := NewFileStore(cfg.FileStoreDir())
	if err == nil {
		fs.Retention = cfg.Retention
	}
	return fs, err
}

// FileStore keeps objects as files below a root directory.
type FileStore struct {
	root string
	// made is the directory mkdirDurable made or found last: the day
	// directory every session of the day goes into.
	made atomic.Pointer[string]
	// Retention, when positive, is how long each recording is kept from
	// its first object on: its retention marker says until when, and
	// DeleteRecording refuses before (retention.go). Zero: no marker.
	Retention time.Duration
	marked    atomic.Pointer[string] // the session directory marked last
}

// NewFileStore returns a store rooted at dir, creating it (mode 0700).
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create file store %s: %w", dir, err)
	}
	return &FileStore{root: dir}, nil
}

func (s *FileStore) path(key string) (string, error) {
	clean := filepath.ToSlash(filepath.Clean("/" + key))
	if key == "" || clean[1:] != key {
		return "", fmt.Errorf("object key %q is not a clean relative path", key)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put writes the object to a temporary file, syncs it and renames it into
// place, so a reader never sees half an object.
func (s *FileStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := s.mkdirDurable(filepath.Dir(p)); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := s.markRetention(s.sessionDirOf(p)); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp := p + ".tmp"
	if err := writeFileSync(tmp, io.LimitReader(r, size), size); err != nil {
		os.Remove(tmp)
		s.made.Store(nil) // the directory may have been removed meanwhile
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := rename(tmp, p); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return syncDir(filepath.Dir(p))
}

// Create writes the object to a temporary file of its own, syncs it and
// hard-links it into place: a link never replaces, so of two creators the
// second finds the first's object (Creator).
func (s *FileStore) Create(ctx context.Context, key string, r io.Reader, size int64) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	if err := s.mkdirDurable(filepath.Dir(p)); err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	if err := s.markRetention(s.sessionDirOf(p)); err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	tmp, err := writeTempSync(p, data)
	if err != nil {
		s.made.Store(nil) // the directory may have been removed meanwhile
		return fmt.Errorf("create %s: %w", key, err)
	}
	err = os.Link(tmp, p)
	os.Remove(tmp)
	if errors.Is(err, fs.ErrExist) {
		return existingObject(ctx, s, key, data)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	return syncDir(filepath.Dir(p))
}

// writeTempSync writes data to a new, uniquely named ".tmp" file beside p
// (List skips it) and fsyncs it: concurrent creators never share one.
func writeTempSync(p string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(p), filepath.Base(p)+".*.tmp")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return f.Name(), err
}

// Link hard-links the spool file at path as the object key, after syncing
// it, so a recording on one filesystem is written to disk once. It fails
// (and the caller copies) across filesystems.
func (s *FileStore) Link(ctx context.Context, key, path string) error {
	return s.linkFile(key, path, false)
}

// linkFile is Link; with synced set the file's data is known to be durable
// (the spool of a sealed session) and is not synced again.
func (s *FileStore) linkFile(key, path string, synced bool) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if !synced {
		// A live session's chunk may be linked before the flusher's next
		// sync: the store must not name data the disk may not have.
		if err := syncFile(path); err != nil {
			return fmt.Errorf("link %s: %w", key, err)
		}
	}
	if err := s.mkdirDurable(filepath.Dir(p)); err != nil {
		return fmt.Errorf("link %s: %w", key, err)
	}
	if err := s.markRetention(s.sessionDirOf(p)); err != nil {
		return fmt.Errorf("link %s: %w", key, err)
	}
	if err := linkReplacing(path, p); err != nil {
		s.made.Store(nil) // the directory may have been removed meanwhile
		return fmt.Errorf("link %s: %w", key, err)
	}
	// The new name is the store's confirmation, on which the uploader
	// deletes the spool's: it must survive a crash.
	return syncDir(filepath.Dir(p))
}

// linkReplacing makes p a hard link to path, replacing what is there
// unless it is that very file already (a link made before a crash).
func linkReplacing(path, p string) error {
	err := os.Link(path, p)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	a, aerr := os.Stat(path)
	b, berr := os.Stat(p)
	if aerr == nil && berr == nil && os.SameFile(a, b) {
		return nil
	}
	tmp := p + ".tmp"
	os.Remove(tmp)
	if err := os.Link(path, tmp); err != nil {
		return err
	}
	return rename(tmp, p)
}

// moveDir renames the sealed spool directory dir to the session directory
// keyDir: one rename stores every object of a short session. The files'
// data and names are durable already (seal); what remains is the rename,
// made durable by syncing the day directory that now holds it. A crash
// before that sync leaves the session either in the spool, sealed, to be
// moved again, or in the store: the rename is atomic.
func (s *FileStore) moveDir(keyDir, dir string) error {
	p, err := s.path(strings.TrimSuffix(keyDir, "/"))
	if err != nil {
		return err
	}
	day := filepath.Dir(p)
	if err := s.mkdirDurable(day); err != nil {
		return fmt.Errorf("store %s: %w", keyDir, err)
	}
	if err := s.markRetention(p); err != nil {
		return fmt.Errorf("store %s: %w", keyDir, err)
	}
	if err := rename(dir, p); err != nil {
		s.made.Store(nil) // the day directory may have been removed meanwhile
		return fmt.Errorf("store %s: %w", keyDir, err)
	}
	if err := syncDir(day); err != nil {
		// Not confirmed: back to the spool, to be stored again. Should
		// even that fail, the session is in the store with every file
		// durable, and only its directory entry unconfirmed.
		if rename(p, dir) != nil {
			return nil
		}
		return err
	}
	return nil
}

// mkdirDurable makes dir and its missing parents, syncing the parent of
// each directory it creates so the new entry survives a crash. The last
// directory made or found is remembered: it is usually the next one asked
// for.
func (s *FileStore) mkdirDurable(dir string) error {
	if last := s.made.Load(); last != nil && *last == dir {
		return nil
	}
	if err := s.mkdirSynced(dir); err != nil {
		return err
	}
	s.made.Store(&dir)
	return nil
}

func (s *FileStore) mkdirSynced(dir string) error {
	if info, err := os.Stat(dir); err == nil && info.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := s.mkdirSynced(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return syncDir(parent)
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// writeFileSync writes exactly size bytes from r to a new file and fsyncs it.
func writeFileSync(path string, r io.Reader, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes, want %d", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Get opens the object's file.
func (s *FileStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return f, nil
}

// List walks the directory below the prefix's parent and returns the
// matching keys, skipping unfinished ".tmp" files.
func (s *FileStore) List(ctx context.Context, prefix string) ([]string, error) {
	base := filepath.Join(s.root, filepath.FromSlash(prefix[:strings.LastIndex(prefix, "/")+1]))
	var keys []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.HasSuffix(p, ".tmp") {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err == nil && strings.HasPrefix(filepath.ToSlash(rel), prefix) {
			keys = append(keys, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	sort.Strings(keys)
	return keys, nil
}
