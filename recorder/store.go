package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNotFound is returned by Store.Get for a key that does not exist.
var ErrNotFound = errors.New("object not found")

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

// fileLinker is the optional ability of a store to take a spool file by
// hard link instead of a copy: the file store on the spool's filesystem.
type fileLinker interface {
	// Link makes the file at path durably the object key, without copying.
	Link(ctx context.Context, key, path string) error
}

// NewStore opens the store cfg names: the file store under DataDir, or S3.
func NewStore(cfg Config) (Store, error) {
	if cfg.Store == StoreS3 {
		return NewS3Store(cfg.S3)
	}
	return NewFileStore(cfg.FileStoreDir())
}

// FileStore keeps objects as files below a root directory.
type FileStore struct {
	root string
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
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp := p + ".tmp"
	if err := writeFileSync(tmp, io.LimitReader(r, size), size); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return syncDir(filepath.Dir(p))
}

// Link hard-links the spool file at path as the object key, after syncing
// it, so a recording on one filesystem is written to disk once. It fails
// (and the caller copies) across filesystems.
func (s *FileStore) Link(ctx context.Context, key, path string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := syncFile(path); err != nil {
		return fmt.Errorf("link %s: %w", key, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("link %s: %w", key, err)
	}
	tmp := p + ".tmp"
	os.Remove(tmp)
	if err := os.Link(path, tmp); err != nil {
		return fmt.Errorf("link %s: %w", key, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("link %s: %w", key, err)
	}
	return syncDir(filepath.Dir(p))
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
