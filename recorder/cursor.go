package recorder

import (
	"bufio"
	"context"
	"fmt"
	"io"
)

// Readers that put a recording's streams in time order cannot take them in
// chain order alone: the chunks of different streams cut at one flush are
// chained in the order the streams were created, so a data event can come
// before the chunk holding its bytes, and a terminal's last output after
// the end event. They read each stream with a cursor of its own that walks
// the chain forward, holding one chunk's reader at a time: memory stays
// flat however long the recording.

// chunkRef is one chunk of the chain: its object name, its stream, and its
// SHA-256 when a manifest names it.
type chunkRef struct {
	name, stream, sha256 string
}

// chunkIndex lists the chunks in chain order with their streams: from the
// manifest, or, for a recording without one (live or damaged), from each
// chunk's header.
func (s Source) chunkIndex(ctx context.Context) ([]chunkRef, error) {
	m, _, err := s.loadManifest(ctx)
	if err != nil {
		return nil, err
	}
	if m != nil {
		objs, err := s.sealedChain(ctx, m)
		refs := make([]chunkRef, 0, len(objs))
		for _, o := range objs {
			refs = append(refs, chunkRef{name: o.Name, stream: o.Stream, sha256: o.SHA256})
		}
		return refs, err
	}
	names, err := s.chainOrder(ctx, nil)
	if err != nil {
		return nil, err
	}
	refs := make([]chunkRef, 0, len(names))
	for _, name := range names {
		st, err := s.chunkStream(ctx, name)
		if err != nil {
			return nil, err
		}
		refs = append(refs, chunkRef{name: name, stream: st})
	}
	return refs, nil
}

// chunkStream reads the stream name from a chunk's header.
func (s Source) chunkStream(ctx context.Context, name string) (string, error) {
	rc, err := s.open(ctx, name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	defer rc.Close()
	h, _, _, err := ReadChunk(bufio.NewReaderSize(rc, maxHeaderLine))
	if err != nil {
		return "", fmt.Errorf("%s: %w; run verify", name, err)
	}
	return h.Stream, nil
}

// streamCursor reads one stream's payload across its chunks, in chain
// order, as one io.Reader. It checks each chunk it finishes against the
// manifest's SHA-256 when there is one.
type streamCursor struct {
	ctx    context.Context
	src    Source
	stream string
	refs   []chunkRef // the chain; the cursor picks its stream's chunks
	next   int        // index in refs of the next chunk to look at

	cur     *chunkRef
	rc      io.ReadCloser
	hr      *hashingReader
	payload io.Reader
	finish  func() error
	header  ChunkHeader
	read    int64 // payload bytes read so far, all chunks
}

func newStreamCursor(ctx context.Context, src Source, refs []chunkRef, stream string) *streamCursor {
	return &streamCursor{ctx: ctx, src: src, stream: stream, refs: refs}
}

// Read reads the stream's payload; io.EOF after its last chunk.
func (c *streamCursor) Read(p []byte) (int, error) {
	for {
		if c.payload == nil {
			if err := c.open(); err != nil {
				return 0, err
			}
		}
		n, err := c.payload.Read(p)
		c.read += int64(n)
		if err == io.EOF {
			if cerr := c.closeChunk(); cerr != nil {
				return n, cerr
			}
			err = nil
			if n == 0 {
				continue
			}
		}
		return n, err
	}
}

// open opens the stream's next chunk; io.EOF when there is none.
func (c *streamCursor) open() error {
	for c.next < len(c.refs) && c.refs[c.next].stream != c.stream {
		c.next++
	}
	if c.next == len(c.refs) {
		return io.EOF
	}
	ref := &c.refs[c.next]
	c.next++
	rc, err := c.src.open(c.ctx, ref.name)
	if err != nil {
		return fmt.Errorf("%s: %w", ref.name, err)
	}
	hr := newHashingReader(rc)
	h, payload, finish, err := ReadChunk(bufio.NewReaderSize(hr, readBufferSize))
	if err == nil && h.Stream != c.stream {
		err = fmt.Errorf("holds stream %s, not %s", h.Stream, c.stream)
	}
	var data io.Reader
	if err == nil {
		data, err = decodePayload(h, payload)
	}
	if err != nil {
		rc.Close()
		return fmt.Errorf("%s: %w; run verify", ref.name, err)
	}
	c.cur, c.rc, c.hr, c.payload, c.finish, c.header = ref, rc, hr, data, finish, h
	return nil
}

// closeChunk checks the chunk just read to its end and closes it.
func (c *streamCursor) closeChunk() error {
	ref, rc := c.cur, c.rc
	c.cur, c.rc, c.payload = nil, nil, nil
	defer rc.Close()
	if err := c.finish(); err != nil {
		return fmt.Errorf("%s: %w; run verify", ref.name, err)
	}
	if ref.sha256 != "" && c.hr.sum() != ref.sha256 {
		return fmt.Errorf("%s: SHA-256 %s does not match the manifest's; run verify", ref.name, short(c.hr.sum()))
	}
	return nil
}

// Close releases the chunk being read, if any.
func (c *streamCursor) Close() error {
	if c.rc != nil {
		c.rc.Close()
		c.rc, c.payload, c.cur = nil, nil, nil
	}
	c.next = len(c.refs)
	return nil
}

// StreamNames lists the streams a recording holds, in the order they
// first appear: "events.jsonl", terminals ("pty-0.cast"), exec streams
// ("exec-1.stdout").
func StreamNames(ctx context.Context, src Source) ([]string, error) {
	refs, err := src.chunkIndex(ctx)
	if err != nil {
		return nil, fmt.Errorf("list streams of %s: %w", src.label(), err)
	}
	var names []string
	seen := map[string]bool{}
	for _, r := range refs {
		if !seen[r.stream] {
			seen[r.stream] = true
			names = append(names, r.stream)
		}
	}
	return names, nil
}
