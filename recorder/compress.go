package recorder

import (
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Payload encodings of chunk/2. Each chunk's payload is one zstd frame or
// one gzip member, so the standard tools read it, and the payloads of a
// stream concatenated are one valid file of that kind. The recorder writes
// zstd unless Config.Compression says gzip; readers accept both.
const (
	encodingZstd = "zstd"
	encodingGzip = "gzip"
)

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

// zstdWindow is the zstd window the recorder compresses with, and
// maxZstdWindow the largest a reader accepts: a reader's memory per chunk
// is bounded by it whatever a chunk's frame header claims, so a hostile
// chunk cannot make it allocate more. A chunk (4 MiB of stream data by
// default) is one frame; matches further back than 1 MiB are rare in
// terminal output (the ratio is within 1% of an 8 MiB window's).
const (
	zstdWindow    = 1 << 20
	maxZstdWindow = 8 << 20
)

// zstdEncoder compresses every session's chunks. It holds one encoder
// state per core (the recorder's compression slots, see
// Recorder.compressSlots), each reused from chunk to chunk: EncodeAll
// borrows one and allocates nothing but its output when it grows.
var zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithEncoderCRC(true)) // verify catches a damaged last chunk by it, as by gzip's CRC
	if err != nil {
		panic(fmt.Sprintf("zstd encoder: %v", err)) // the options are constant and valid
	}
	return enc
})

// appendZstd appends raw, compressed as one zstd frame, to dst.
func appendZstd(dst, raw []byte) []byte {
	return zstdEncoder().EncodeAll(raw, dst)
}

// zstdDecoders are reused by readers: a decoder keeps its window buffer
// (at most maxZstdWindow) from one chunk to the next.
var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1), // decode in the reader's goroutine, no goroutines left behind
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxZstdWindow),
		zstd.WithDecoderMaxMemory(maxZstdWindow))
	if err != nil {
		panic(fmt.Sprintf("zstd decoder: %v", err)) // the options are constant and valid
	}
	return d
}}

// zstdReader reads one chunk's zstd payload and hands its decoder back
// to the pool at the end of the payload or at the first error.
type zstdReader struct {
	d   *zstd.Decoder
	err error
}

func newZstdReader(payload io.Reader) (*zstdReader, error) {
	d := zstdDecoders.Get().(*zstd.Decoder)
	if err := d.Reset(payload); err != nil {
		zstdDecoders.Put(d)
		return nil, fmt.Errorf("zstd payload: %w", err)
	}
	return &zstdReader{d: d}, nil
}

func (z *zstdReader) Read(p []byte) (int, error) {
	if z.d == nil {
		return 0, z.err
	}
	n, err := z.d.Read(p)
	if err != nil {
		z.release(err)
	}
	return n, err
}

func (z *zstdReader) release(err error) {
	z.d.Reset(nil) // drop the payload reader; the decoder is idle again
	zstdDecoders.Put(z.d)
	z.d, z.err = nil, err
}

// decodePayload returns a reader of the stream bytes a chunk's stored
// payload holds: the payload itself for chunk/1, its decompression for
// zstd or gzip. Reading it to EOF checks the frame's or member's checksum
// and length.
func decodePayload(h ChunkHeader, payload io.Reader) (io.Reader, error) {
	switch h.Encoding {
	case "":
		return payload, nil
	case encodingZstd:
		return newZstdReader(payload)
	case encodingGzip:
		zr, err := gzip.NewReader(payload)
		if err != nil {
			return nil, fmt.Errorf("gzip payload: %w", err)
		}
		return zr, nil
	}
	return nil, fmt.Errorf("payload encoding %q is unknown", h.Encoding)
}

// knownEncoding reports whether readers can decode a chunk/2 payload
// stored as enc.
func knownEncoding(enc string) bool { return enc == encodingZstd || enc == encodingGzip }
