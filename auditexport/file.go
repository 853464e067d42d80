package auditexport

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// fileSink appends JSON lines to a file, rotated by size: path.1 is the
// newest rotated file, path.N the oldest kept.
type fileSink struct {
	name    string
	path    string
	maxSize int64
	keep    int
	f       *os.File
	size    int64
}

func newFileSink(c SinkConfig) (*fileSink, error) {
	s := &fileSink{name: c.SinkName(), path: c.Path, maxSize: c.MaxSize, keep: c.Keep}
	if s.maxSize == 0 {
		s.maxSize = defaultMaxSize
	}
	if s.keep == 0 {
		s.keep = defaultKeep
	}
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o700); err != nil {
		return nil, fmt.Errorf("file sink %s: %w", c.Path, err)
	}
	return s, nil
}

func (s *fileSink) Name() string { return s.name }

// Send appends recs, one line each, rotating first when a line would take
// the file past its size, and syncs the file before it returns.
func (s *fileSink) Send(_ context.Context, recs []Record) error {
	if err := s.open(); err != nil {
		return err
	}
	for _, r := range recs {
		line := append(append([]byte{}, r.JSON...), '\n')
		if s.size > 0 && s.size+int64(len(line)) > s.maxSize {
			if err := s.rotate(); err != nil {
				return err
			}
		}
		n, err := s.f.Write(line)
		s.size += int64(n)
		if err != nil {
			return fmt.Errorf("write %s: %w", s.path, err)
		}
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", s.path, err)
	}
	return nil
}

// open opens the live file for appending unless it is open.
func (s *fileSink) open() error {
	if s.f != nil {
		return nil
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat %s: %w", s.path, err)
	}
	s.f, s.size = f, st.Size()
	return nil
}

// rotate shifts path.k to path.k+1 (dropping the oldest), moves the live
// file to path.1 and opens a new one.
func (s *fileSink) rotate() error {
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", s.path, err)
	}
	s.f.Close()
	s.f = nil
	os.Remove(fmt.Sprintf("%s.%d", s.path, s.keep))
	for k := s.keep - 1; k >= 1; k-- {
		from := fmt.Sprintf("%s.%d", s.path, k)
		if err := os.Rename(from, fmt.Sprintf("%s.%d", s.path, k+1)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("rotate %s: %w", from, err)
		}
	}
	if err := os.Rename(s.path, s.path+".1"); err != nil {
		return fmt.Errorf("rotate %s: %w", s.path, err)
	}
	return s.open()
}

func (s *fileSink) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
