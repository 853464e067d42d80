package recorder

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Status is the verdict of Verify.
type Status string

// Verdicts. Only StatusIntact means the recording is whole and authentic.
const (
	// StatusIntact: signed by the trusted key, every object present and
	// unmodified, and the session was recorded to its end.
	StatusIntact Status = "intact"
	// StatusIncomplete: authentic and unmodified, but the recording itself
	// says it lacks data (the bastion crashed, or data was dropped).
	StatusIncomplete Status = "incomplete"
	// StatusUnsealed: there is no manifest (the session is live, or the
	// manifest was removed); the hash chain alone was checked.
	StatusUnsealed Status = "unsealed"
	// StatusTampered: something is missing, altered, reordered or signed by
	// another key. Problems names each object.
	StatusTampered Status = "tampered"
	// StatusPending: the session index shows the session live or its
	// recording still uploading, and the only problems are objects not in
	// the store yet (see Report.Pending). Not verified: check again later.
	StatusPending Status = "pending"
)

// Problem is one thing wrong with one object.
type Problem struct {
	// Object is the object name, e.g. "000005.chunk" or "manifest.json".
	Object string `json:"object"`
	// Seq is the chunk number; 0 for session.json and the manifest.
	Seq int `json:"seq"`
	// What says what is wrong, e.g. "truncated: 100 bytes, manifest says 4196".
	What string `json:"what"`
	// Missing: the object is not in the store, as objects still on their
	// way from the spool are not.
	Missing bool `json:"missing,omitempty"`
}

func (p Problem) String() string {
	if p.Seq > 0 {
		return fmt.Sprintf("chunk %d (%s): %s", p.Seq, p.Object, p.What)
	}
	return p.Object + ": " + p.What
}

// Report is the result of Verify.
type Report struct {
	Session string `json:"session"`
	Status  Status `json:"status"`
	// Reason is the manifest's own explanation of an incomplete recording.
	Reason string `json:"reason,omitempty"`
	// Signer is the fingerprint of the key that signed the manifest.
	Signer   string    `json:"signer,omitempty"`
	Chunks   int       `json:"chunks"`
	Bytes    int64     `json:"bytes"`
	Problems []Problem `json:"problems,omitempty"`
	// Manifest is the manifest as read; nil when missing or unreadable.
	Manifest *Manifest `json:"-"`
	// Lock is the retention the store keeps the recording under (S3
	// Object Lock, the file store's marker); nil when none.
	Lock *LockReport `json:"lock,omitempty"`
	// Continuation is the signed continuation a lost replica uploaded
	// when it came back (see continuation.go); nil when there is none.
	// Chunks and Bytes include its chunks.
	Continuation *ContinuationReport `json:"continuation,omitempty"`
}

// OK reports whether the recording is intact.
func (r Report) OK() bool { return r.Status == StatusIntact }

// String renders the report for people: the verdict, then one line per problem.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s (%d chunks, %d bytes)", r.Session, r.Status, r.Chunks, r.Bytes)
	if r.Reason != "" {
		fmt.Fprintf(&b, ": %s", r.Reason)
	}
	if c := r.Continuation; c != nil {
		fmt.Fprintf(&b, "\n  continued by %s: chunks %d-%d, signed by %s: %s", continuationDir, c.FirstSeq, c.LastSeq, c.Signer, c.Reason)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "\n  %s", p)
	}
	if r.Lock != nil {
		fmt.Fprintf(&b, "\n  %s", r.Lock)
	}
	return b.String()
}

func (r *Report) problem(object string, seq int, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Object: object, Seq: seq, What: fmt.Sprintf(format, args...)})
}

// missing reports an object the store does not hold.
func (r *Report) missing(object string, seq int, format string, args ...any) {
	r.problem(object, seq, format, args...)
	r.Problems[len(r.Problems)-1].Missing = true
}

// Pending adjusts the verdict for a session whose index state is st: while
// the recording is in transit (live or uploading), a report whose only
// problems are objects not in the store yet is StatusPending, not
// StatusTampered. Anything present but altered, reordered or foreign keeps
// it tampered, whatever the state.
func (r *Report) Pending(st State) {
	if r.Status != StatusTampered || !st.InTransit() {
		return
	}
	for _, p := range r.Problems {
		if !p.Missing {
			return
		}
	}
	r.Status = StatusPending
}

// Verify checks the recording in src against the trusted public key: the
// manifest's signature, every object's size and SHA-256, the hash chain,
// and that the store holds nothing the manifest does not name. It reads
// every object once, streaming. The error is for failures to read the
// store; everything wrong with the recording is in the report.
func Verify(ctx context.Context, src Source, pub ed25519.PublicKey) (Report, error) {
	rep := Report{Session: src.id}
	m, err := verifyManifest(ctx, src, pub, &rep)
	if err != nil {
		return rep, err
	}
	if src.id == "" && m != nil { // a directory source: the manifest names the session
		src.id, rep.Session = m.Session, m.Session
	}
	objects, err := expectedObjects(ctx, src, m)
	if err != nil {
		return rep, err
	}
	if err := verifyObjects(ctx, src, objects, m != nil, &rep); err != nil {
		return rep, err
	}
	if err := verifyListing(ctx, src, objects, &rep); err != nil {
		return rep, err
	}
	if err := verifyContinuation(ctx, src, pub, m, &rep); err != nil {
		return rep, err
	}
	rep.Status = verdict(rep, m)
	rep.Lock = readLock(ctx, src)
	return rep, nil
}

func verdict(rep Report, m *Manifest) Status {
	switch {
	case len(rep.Problems) > 0:
		return StatusTampered
	case m == nil:
		return StatusUnsealed
	case m.State != ManifestComplete:
		return StatusIncomplete
	}
	return StatusIntact
}

// verifyManifest reads and checks the manifest and its signature. It
// returns nil (and no error) when there is no usable manifest.
func verifyManifest(ctx context.Context, src Source, pub ed25519.PublicKey, rep *Report) (*Manifest, error) {
	m, body, err := src.loadManifest(ctx)
	switch {
	case err != nil && body == nil:
		if errors.Is(err, ErrNotFound) {
			break
		}
		return nil, err
	case err != nil:
		rep.problem(manifestObject, 0, "unreadable: %v", err)
		return nil, nil
	case m == nil:
		if _, serr := src.readSmall(ctx, sigObject, maxManifestSize); serr == nil {
			rep.problem(manifestObject, 0, "missing, but its signature is present: the manifest was removed")
		}
		return nil, nil
	}
	rep.Manifest, rep.Reason = m, m.Reason
	if m.Session != src.id && src.id != "" {
		rep.problem(manifestObject, 0, "is for session %q, not %q", m.Session, src.id)
	}
	sig, err := src.readSmall(ctx, sigObject, maxManifestSize)
	if errors.Is(err, ErrNotFound) {
		rep.problem(sigObject, 0, "missing: the manifest is unsigned")
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	rep.Signer = m.Signer
	if err := checkManifestSig(pub, body, sig); err != nil {
		rep.problem(manifestObject, 0, "%v", err)
	}
	return m, nil
}

// expectedObjects is what should be in the store: the manifest's list, or
// for an unsealed recording session.json and the chunks found.
func expectedObjects(ctx context.Context, src Source, m *Manifest) ([]ManifestObject, error) {
	if m != nil {
		return m.Objects, nil
	}
	names, err := src.chainOrder(ctx, nil)
	if err != nil {
		return nil, err
	}
	objs := []ManifestObject{{Name: sessionObject, Size: -1}}
	for _, n := range names {
		seq, _ := chunkSeq(n)
		objs = append(objs, ManifestObject{Name: n, Seq: seq, Size: -1})
	}
	return objs, nil
}

// verifyObjects checks each object's size, hash and chain link.
func verifyObjects(ctx context.Context, src Source, objs []ManifestObject, sealed bool, rep *Report) error {
	prev, lastSeq := "", 0
	for i, o := range objs {
		if !sealed && i > 0 && o.Seq != lastSeq+1 {
			rep.missing(chunkName(lastSeq+1), lastSeq+1, "missing: the chain jumps from chunk %d to %d", lastSeq, o.Seq)
		}
		lastSeq = o.Seq
		got, err := checkObject(ctx, src, o, prev, rep)
		if err != nil {
			return err
		}
		prev = got
		if o.Seq > 0 {
			rep.Chunks++
		}
	}
	return nil
}

// checkObject streams one object and reports what is wrong with it. It
// returns the SHA-256 the next chunk must name as prev: the object's actual
// hash, or the manifest's when the object is missing.
func checkObject(ctx context.Context, src Source, o ManifestObject, prev string, rep *Report) (string, error) {
	rc, err := src.open(ctx, o.Name)
	if errors.Is(err, ErrNotFound) {
		rep.missing(o.Name, o.Seq, "missing from the store")
		return o.SHA256, nil
	}
	if err != nil {
		return "", err
	}
	defer rc.Close()
	hr := newHashingReader(rc)
	var hdr *ChunkHeader
	var hdrErr error
	if o.Seq > 0 {
		hdr, hdrErr = scanChunk(hr)
	}
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return "", fmt.Errorf("read %s: %w", o.Name, err)
	}
	rep.Bytes += hr.n
	sum := hr.sum()
	judgeObject(o, hr.n, sum, hdr, hdrErr, prev, src.id, rep)
	return sum, nil
}

// scanChunk parses a chunk's header and reads its payload, returning the
// header and anything structurally wrong (truncation, trailing bytes, a
// compressed payload that does not decompress or fails its CRC).
func scanChunk(r io.Reader) (*ChunkHeader, error) {
	br := bufio.NewReaderSize(r, readBufferSize)
	h, payload, finish, err := ReadChunk(br)
	if err != nil {
		return nil, err
	}
	data, derr := decodePayload(h, payload)
	if derr == nil {
		_, derr = io.Copy(io.Discard, data)
	}
	if _, err := io.Copy(io.Discard, payload); err != nil { // what the decoder left
		return &h, err
	}
	if err := finish(); err != nil {
		return &h, err
	}
	if derr != nil {
		return &h, fmt.Errorf("payload does not decode: %w", derr)
	}
	return &h, nil
}

// judgeObject compares what was read with what was expected.
func judgeObject(o ManifestObject, n int64, sum string, hdr *ChunkHeader, hdrErr error, prev, id string, rep *Report) {
	if o.Size >= 0 && sum != o.SHA256 {
		switch {
		case hdr != nil && hdr.Seq != o.Seq:
			rep.problem(o.Name, o.Seq, "holds chunk %d: chunks were reordered", hdr.Seq)
		case n < o.Size:
			rep.problem(o.Name, o.Seq, "truncated: %d bytes, manifest says %d", n, o.Size)
		case n > o.Size:
			rep.problem(o.Name, o.Seq, "%d bytes, manifest says %d: data was added", n, o.Size)
		default:
			rep.problem(o.Name, o.Seq, "content differs from the manifest (SHA-256 %s, want %s)", short(sum), short(o.SHA256))
		}
		return
	}
	if o.Seq == 0 {
		return
	}
	switch {
	case hdrErr != nil && hdr == nil:
		rep.problem(o.Name, o.Seq, "unreadable chunk: %v", hdrErr)
	case hdr.Seq != o.Seq:
		rep.problem(o.Name, o.Seq, "holds chunk %d: chunks were reordered", hdr.Seq)
	case hdrErr != nil:
		rep.problem(o.Name, o.Seq, "%v", hdrErr)
	case hdr.Prev != prev:
		rep.problem(o.Name, o.Seq, "breaks the hash chain: previous object's SHA-256 is %s, chunk names %s", short(prev), short(hdr.Prev))
	case hdr.Session != id && id != "":
		rep.problem(o.Name, o.Seq, "belongs to session %q", hdr.Session)
	}
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}

// verifyListing reports objects in the session's directory that the
// manifest does not name (something was added).
func verifyListing(ctx context.Context, src Source, objs []ManifestObject, rep *Report) error {
	names, err := src.names(ctx)
	if err != nil {
		return fmt.Errorf("list %s: %w", src.id, err)
	}
	known := map[string]bool{manifestObject: true, sigObject: true}
	for _, o := range objs {
		known[o.Name] = true
	}
	for _, n := range names {
		if !known[n] {
			seq, _ := chunkSeq(n)
			rep.problem(n, seq, "not named by the manifest: an object was added")
		}
	}
	return nil
}
