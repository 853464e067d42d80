// Package syncbuf is a bytes.Buffer that something else writes (a logger,
// a child process's output) while a test reads it.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is safe for one writer and readers at once. The zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
