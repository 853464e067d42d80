package recorder

import (
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// encodingGzip is the only payload encoding of chunk/2: each chunk's
// payload is one gzip member, so any gzip tool reads it, and the payloads
// of a stream concatenated are one (multi-member) gzip file.
const encodingGzip = "gzip"

// gzipLevel trades ratio for speed: terminal output shrinks about 4.5x
// at level 1 (asciicast JSON included), and higher levels cost several
// times the CPU for a few percent.
const gzipLevel = gzip.BestSpeed

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzipLevel) // cannot fail: the level is valid
	return w
}}

// sliceWriter appends what is written to a byte slice.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(grow(w.b, len(p)), p...)
	return len(p), nil
}

// appendGzip appends raw, compressed as one gzip member, to dst.
// Compressors are pooled: a session holds one only while compressing.
func appendGzip(dst, raw []byte) []byte {
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	out := &sliceWriter{b: dst}
	zw.Reset(out)
	zw.Write(raw) // cannot fail: it writes to memory
	zw.Close()
	return out.b
}

// decodePayload returns a reader of the stream bytes a chunk's stored
// payload holds: the payload itself for chunk/1, its decompression for
// gzip. Reading it to EOF checks the gzip CRC and length.
func decodePayload(h ChunkHeader, payload io.Reader) (io.Reader, error) {
	switch h.Encoding {
	case "":
		return payload, nil
	case encodingGzip:
		zr, err := gzip.NewReader(payload)
		if err != nil {
			return nil, fmt.Errorf("gzip payload: %w", err)
		}
		return zr, nil
	}
	return nil, fmt.Errorf("payload encoding %q is unknown", h.Encoding)
}
