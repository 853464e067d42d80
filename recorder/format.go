package recorder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Object names inside a session directory.
const (
	sessionObject  = "session.json"
	manifestObject = "manifest.json"
	sigObject      = "manifest.json.sig"
	chunkSuffix    = ".chunk"
	eventsStream   = "events.jsonl"
	chunkFormat    = "chunk/2" // what the recorder writes: compressed payload
	chunkFormatV1  = "chunk/1" // recordings made before compression: plain payload
	manifestFormat = "manifest/1"
)

// maxHeaderLine bounds a chunk header so a hostile object cannot make a
// reader buffer without limit.
const maxHeaderLine = 4096

// maxManifestSize bounds manifest.json for the same reason (about 25k chunks).
const maxManifestSize = 16 << 20

// chunkName is the object name of chunk seq.
func chunkName(seq int) string { return fmt.Sprintf("%06d%s", seq, chunkSuffix) }

// chunkSeq parses a chunk object name; ok is false for other names.
func chunkSeq(name string) (int, bool) {
	base, found := strings.CutSuffix(name, chunkSuffix)
	if !found || base == "" {
		return 0, false
	}
	n, err := strconv.Atoi(base)
	return n, err == nil && n > 0
}

// castStream is the stream name of pty channel ch.
func castStream(ch int) string { return fmt.Sprintf("pty-%d.cast", ch) }

// ChunkHeader is the first line of every chunk object: a JSON object
// followed by '\n', then exactly Size payload bytes, encoded as Encoding
// says (chunk/2) or plain (chunk/1).
type ChunkHeader struct {
	Format  string `json:"sallyport"`
	Session string `json:"session"`
	Seq     int    `json:"seq"`
	Stream  string `json:"stream"`
	// Prev is the hex SHA-256 of the previous object in the chain: chunk
	// Seq-1, or session.json for chunk 1.
	Prev string `json:"prev"`
	// Encoding is how the payload is stored: "zstd" or "gzip" in chunk/2,
	// absent (plain) in chunk/1.
	Encoding string `json:"encoding,omitempty"`
	// Size is the stored payload's length in bytes.
	Size  int64     `json:"size"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

func (h ChunkHeader) check() error {
	switch {
	case h.Format != chunkFormat && h.Format != chunkFormatV1:
		return fmt.Errorf("format %q, want %q or %q", h.Format, chunkFormat, chunkFormatV1)
	case h.Format == chunkFormatV1 && h.Encoding != "":
		return fmt.Errorf("encoding %q in a %s chunk, which has none", h.Encoding, chunkFormatV1)
	case h.Format == chunkFormat && !knownEncoding(h.Encoding):
		return fmt.Errorf("encoding %q, want %q or %q", h.Encoding, encodingZstd, encodingGzip)
	case h.Seq <= 0:
		return fmt.Errorf("seq %d is not positive", h.Seq)
	case h.Size < 0:
		return fmt.Errorf("size %d is negative", h.Size)
	case len(h.Prev) != 64:
		return fmt.Errorf("prev %q is not a SHA-256", h.Prev)
	case h.Stream != eventsStream && !strings.HasSuffix(h.Stream, ".cast") && !isExecStream(h.Stream):
		return fmt.Errorf("stream %q is unknown", h.Stream)
	}
	return nil
}

// ReadChunk parses a chunk header from r and returns it with a reader of
// exactly its payload. The caller must read the payload to EOF and then
// call finish, which reports a short or over-long object.
func ReadChunk(r *bufio.Reader) (ChunkHeader, io.Reader, func() error, error) {
	var h ChunkHeader
	line, err := readLine(r, maxHeaderLine)
	if err != nil {
		return h, nil, nil, fmt.Errorf("read chunk header: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return h, nil, nil, fmt.Errorf("parse chunk header: %w", err)
	}
	if err := h.check(); err != nil {
		return h, nil, nil, fmt.Errorf("chunk header: %w", err)
	}
	lr := &io.LimitedReader{R: r, N: h.Size}
	finish := func() error {
		if lr.N > 0 {
			return fmt.Errorf("truncated: payload ends %d bytes short of %d", lr.N, h.Size)
		}
		if _, err := r.ReadByte(); err == nil {
			return fmt.Errorf("trailing data after the %d-byte payload", h.Size)
		}
		return nil
	}
	return h, lr, finish, nil
}

// readLine reads one '\n'-terminated line of at most max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > max {
			return nil, fmt.Errorf("line longer than %d bytes", max)
		}
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// Manifest states.
const (
	ManifestComplete   = "complete"
	ManifestIncomplete = "incomplete"
	ManifestDegraded   = "degraded"
)

// Manifest is manifest.json: the list of every other object of the session
// with its size and SHA-256, signed by manifest.json.sig.
type Manifest struct {
	Format  string `json:"sallyport"`
	Session string `json:"session"`
	// State is complete, incomplete (the bastion died while the session
	// was live) or degraded (data was dropped); Reason says why.
	State      string           `json:"state"`
	Reason     string           `json:"reason,omitempty"`
	StartedAt  time.Time        `json:"started_at"`
	EndedAt    time.Time        `json:"ended_at"`
	ExitStatus *int             `json:"exit_status,omitempty"`
	Signer     string           `json:"signer"`
	Objects    []ManifestObject `json:"objects"`
	Streams    []StreamSummary  `json:"streams"`
	Counts     Counts           `json:"counts"`
}

// Counts sums up a session: terminal bytes recorded (output and, when
// enabled, input), events written, and bytes dropped in a degraded session.
type Counts struct {
	OutputBytes  int64 `json:"output_bytes"`
	InputBytes   int64 `json:"input_bytes"`
	Events       int64 `json:"events"`
	DroppedBytes int64 `json:"dropped_bytes"`
}

// ManifestObject is one object covered by the manifest. Seq is 0 for
// session.json and the chunk number otherwise.
type ManifestObject struct {
	Name   string `json:"name"`
	Seq    int    `json:"seq"`
	Stream string `json:"stream,omitempty"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// StreamSummary counts what one stream holds.
type StreamSummary struct {
	Name    string `json:"name"`
	Chunks  int    `json:"chunks"`
	Bytes   int64  `json:"bytes"`
	Records int64  `json:"records"`
}

// ParseManifest decodes and sanity-checks manifest.json.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("parse manifest: %w", err)
	}
	if dec.More() {
		return m, errors.New("parse manifest: trailing data")
	}
	return m, m.check()
}

func (m Manifest) check() error {
	if m.Format != manifestFormat {
		return fmt.Errorf("manifest format %q, want %q", m.Format, manifestFormat)
	}
	if len(m.Objects) == 0 || m.Objects[0].Name != sessionObject || m.Objects[0].Seq != 0 {
		return errors.New("manifest: first object is not session.json")
	}
	for i, o := range m.Objects[1:] {
		if o.Seq != i+1 || o.Name != chunkName(o.Seq) {
			return fmt.Errorf("manifest: object %d is %q seq %d, want %s", i+1, o.Name, o.Seq, chunkName(i+1))
		}
	}
	for _, o := range m.Objects {
		if len(o.SHA256) != 64 || o.Size < 0 {
			return fmt.Errorf("manifest: object %s has a malformed size or hash", o.Name)
		}
	}
	switch m.State {
	case ManifestComplete, ManifestIncomplete, ManifestDegraded:
		return nil
	}
	return fmt.Errorf("manifest: state %q is unknown", m.State)
}
