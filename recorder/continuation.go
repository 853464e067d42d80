package recorder

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// A continuation holds the chunks a lost replica still had in its spool
// when it came back, of a session a survivor sealed from the store in its
// absence (SealFromStore). It lives beside the sealed recording, under
// continuationDir, with a signed manifest of its own that names the sealed
// manifest it continues; the sealed manifest is never replaced.
const (
	continuationDir    = "continuation/"
	continuationFormat = "continuation/1"
)

// Continuation is continuation/manifest.json.
type Continuation struct {
	Format  string `json:"sallyport"`
	Session string `json:"session"`
	// Continues ties the continuation to the sealed recording.
	Continues ContinuationLink `json:"continues"`
	// State is incomplete: the continuation is what a crashed replica
	// recovered. Reason says so.
	State     string           `json:"state"`
	Reason    string           `json:"reason,omitempty"`
	StartedAt time.Time        `json:"started_at"`
	EndedAt   time.Time        `json:"ended_at"`
	Signer    string           `json:"signer"`
	Objects   []ManifestObject `json:"objects"`
	Streams   []StreamSummary  `json:"streams"`
}

// ContinuationLink names what a continuation continues: the SHA-256 of the
// sealed manifest.json, and the last chunk it covers (its number and
// SHA-256, which the continuation's first chunk names as prev).
type ContinuationLink struct {
	Manifest string `json:"manifest_sha256"`
	Seq      int    `json:"seq"`
	SHA256   string `json:"sha256"`
}

// ParseContinuation decodes and sanity-checks continuation/manifest.json.
func ParseContinuation(b []byte) (Continuation, error) {
	var c Continuation
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("parse continuation manifest: %w", err)
	}
	if dec.More() {
		return c, errors.New("parse continuation manifest: trailing data")
	}
	return c, c.check()
}

func (c Continuation) check() error {
	switch {
	case c.Format != continuationFormat:
		return fmt.Errorf("continuation manifest format %q, want %q", c.Format, continuationFormat)
	case len(c.Continues.Manifest) != 64 || len(c.Continues.SHA256) != 64 || c.Continues.Seq < 0:
		return errors.New("continuation manifest: continues is malformed")
	case c.State != ManifestIncomplete:
		return fmt.Errorf("continuation manifest: state %q, want %q", c.State, ManifestIncomplete)
	}
	for i, o := range c.Objects {
		seq := c.Continues.Seq + 1 + i
		if o.Seq != seq || o.Name != chunkName(seq) {
			return fmt.Errorf("continuation manifest: object %d is %q seq %d, want %s", i, o.Name, o.Seq, chunkName(seq))
		}
		if len(o.SHA256) != 64 || o.Size < 0 {
			return fmt.Errorf("continuation manifest: object %s has a malformed size or hash", o.Name)
		}
	}
	return nil
}

// continueSealed handles a session sealed in a spool left by an earlier
// process (recovered at start, or ended before it died) that a survivor
// sealed from the store meanwhile: the spool's chunks past the sealed ones
// go to the store as a continuation, and the spool is retired. It reports
// false, doing nothing, when the store holds no manifest of the session or
// the spool's own.
func (r *Recorder) continueSealed(ctx context.Context, dir, key string, ss sealedSession, sp spoolDir) (bool, error) {
	src := Source{store: r.Store, dir: key, id: ss.meta.ID}
	body, err := src.readSmall(ctx, manifestObject, maxManifestSize)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for a seal of %s: %w", ss.meta.ID, err)
	}
	if own, err := os.ReadFile(filepath.Join(dir, manifestObject)); err == nil && bytes.Equal(own, body) {
		return false, nil // this spool's manifest, stored before a crash
	}
	sealed, err := ParseManifest(body)
	if err != nil {
		return false, fmt.Errorf("sealed manifest of %s in the store: %w", ss.meta.ID, err)
	}
	c := r.continuationOf(body, sealed, ss)
	if len(c.Objects) > 0 {
		if err := r.putContinuation(ctx, src, dir, &c); err != nil {
			return false, err
		}
	}
	if err := removeSpool(dir, sp.all); err != nil {
		return false, fmt.Errorf("remove continued session %s from spool: %w", ss.meta.ID, err)
	}
	r.reportContinued(ss, key, sealed, c)
	return true, nil
}

// continuationOf is the continuation of sealed by the spool's manifest:
// the chunks it has past the sealed ones.
func (r *Recorder) continuationOf(body []byte, sealed Manifest, ss sealedSession) Continuation {
	last := len(sealed.Objects) - 1
	sum := sha256.Sum256(body)
	c := Continuation{Format: continuationFormat, Session: ss.meta.ID, State: ManifestIncomplete,
		Continues: ContinuationLink{Manifest: hex.EncodeToString(sum[:]), Seq: last, SHA256: sealed.Objects[last].SHA256},
		StartedAt: ss.meta.StartedAt, EndedAt: ss.manifest.EndedAt, Signer: fingerprintOf(r.Key)}
	why := ss.manifest.Reason
	if why == "" { // the session had ended; its replica was lost before it stored the recording
		why = "the replica's spool held the session sealed " + ss.manifest.State
	}
	c.Reason = fmt.Sprintf("%s; continues the recording sealed in this replica's absence after chunk %d", why, last)
	if last+1 < len(ss.manifest.Objects) {
		c.Objects = ss.manifest.Objects[last+1:]
	}
	return c
}

// summarize counts the chunks and bytes of each stream.
func (c *Continuation) summarize() {
	c.Streams = nil
	idx := map[string]int{}
	for _, o := range c.Objects {
		if _, ok := idx[o.Stream]; !ok {
			idx[o.Stream] = len(c.Streams)
			c.Streams = append(c.Streams, StreamSummary{Name: o.Stream})
		}
		st := &c.Streams[idx[o.Stream]]
		st.Chunks++
		st.Bytes += o.Size
	}
}

// putContinuation uploads the continuation's chunks from the spool (or,
// for one uploaded before the crash, copied from beside the sealed ones),
// then its signature and manifest. A chunk found nowhere ends it there.
func (r *Recorder) putContinuation(ctx context.Context, src Source, dir string, c *Continuation) error {
	cdir := src.dir + continuationDir
	for i, o := range c.Objects {
		err := r.putFile(ctx, cdir+o.Name, filepath.Join(dir, o.Name), true)
		if err != nil {
			err = copyObject(ctx, src.store, src.dir+o.Name, cdir+o.Name)
		}
		if errors.Is(err, ErrNotFound) {
			c.Objects = c.Objects[:i]
			break
		}
		if err != nil {
			return fmt.Errorf("upload continuation of %s: %w", c.Session, err)
		}
	}
	c.summarize()
	body, sig, err := signedManifest(c, r.Key)
	if err != nil {
		return err
	}
	err = writeSeal(ctx, r.Store, cdir, sig, body)
	if errors.Is(err, ErrExists) {
		// Stored by an earlier run of this spool that stopped before
		// retiring it: a signed continuation is never replaced either.
		r.logger().Warn("the session's continuation is in the store already; kept as it is", "session", c.Session)
		return nil
	}
	if err != nil {
		return fmt.Errorf("upload continuation of %s: %w", c.Session, err)
	}
	return nil
}

// copyObject copies one object within the store.
func copyObject(ctx context.Context, store Store, from, to string) error {
	rc, err := store.Get(ctx, from)
	if err != nil {
		return err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); err != nil {
		return fmt.Errorf("read %s: %w", from, err)
	}
	return store.Put(ctx, to, &buf, int64(buf.Len()))
}

// reportContinued reports the session incomplete with both reasons: the
// seal's and what the restarted replica added. The counts are the larger
// of the seal's and the spool's, which counted the whole session.
func (r *Recorder) reportContinued(ss sealedSession, key string, sealed Manifest, c Continuation) {
	reason := sealed.Reason + "; the lost replica came back"
	if n := len(c.Objects); n > 0 {
		reason += fmt.Sprintf(" and stored chunks %d-%d as a signed continuation (%s): %s",
			c.Objects[0].Seq, c.Objects[n-1].Seq, continuationDir, c.Reason)
	} else {
		reason += ", with nothing past the sealed chunks: " + c.Reason
	}
	ended := sealed.EndedAt
	if c.EndedAt.After(ended) {
		ended = c.EndedAt
	}
	r.report(StateChange{Meta: ss.meta, State: StateIncomplete, Dir: key, EndedAt: ended,
		Bytes:  max(sealed.Counts.OutputBytes, ss.manifest.Counts.OutputBytes),
		Events: max(sealed.Counts.Events, ss.manifest.Counts.Events), Reason: reason})
}

// ContinuationReport is what Verify found of a continuation.
type ContinuationReport struct {
	// FirstSeq and LastSeq are the chunks it holds; LastSeq < FirstSeq
	// when it holds none.
	FirstSeq int    `json:"first_seq"`
	LastSeq  int    `json:"last_seq"`
	Reason   string `json:"reason,omitempty"`
	Signer   string `json:"signer,omitempty"`
}

// loadContinuation returns the continuation's manifest and body; nil (and
// no error) when the session has none.
func (s Source) loadContinuation(ctx context.Context) (*Continuation, []byte, error) {
	body, err := s.readSmall(ctx, continuationDir+manifestObject, maxManifestSize)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	c, err := ParseContinuation(body)
	if err != nil {
		return nil, body, err
	}
	return &c, body, nil
}

// sealedChain is the chunks of the sealed recording m, in chain order:
// those its manifest names, then its continuation's (named relative to
// the session directory), if it has one that parses (Verify says when
// one does not). On an error reading the continuation it returns the
// sealed ones with the error.
func (s Source) sealedChain(ctx context.Context, m *Manifest) ([]ManifestObject, error) {
	out := slices.Clip(m.Objects[1:])
	c, _, err := s.loadContinuation(ctx)
	if c == nil {
		return out, err
	}
	for _, o := range c.Objects {
		o.Name = continuationDir + o.Name
		out = append(out, o)
	}
	return out, nil
}

// verifyContinuation checks the session's continuation, when it has one:
// its signature, that it continues the sealed manifest m after its last
// chunk, and its chunks and listing as Verify checks the sealed ones.
// Problems name continuation objects by their path.
func verifyContinuation(ctx context.Context, src Source, pub ed25519.PublicKey, m *Manifest, rep *Report) error {
	names, err := src.store.List(ctx, src.dir+continuationDir)
	if err != nil || len(names) == 0 {
		return err
	}
	c, body, err := src.loadContinuation(ctx)
	cm := continuationDir + manifestObject
	switch {
	case c == nil && body == nil && err != nil:
		return err
	case err != nil:
		rep.problem(cm, 0, "unreadable: %v", err)
		return nil
	case c == nil:
		rep.problem(cm, 0, "missing, but continuation objects are present")
		return nil
	}
	rep.Continuation = &ContinuationReport{FirstSeq: c.Continues.Seq + 1, LastSeq: c.Continues.Seq + len(c.Objects),
		Reason: c.Reason, Signer: c.Signer}
	before := len(rep.Problems)
	checkContinuationSig(ctx, src, pub, body, rep)
	prev := checkLink(ctx, src, c, m, rep)
	csrc := Source{store: src.store, dir: src.dir + continuationDir, id: src.id}
	sub := Report{Session: src.id}
	for _, o := range c.Objects {
		if prev, err = checkObject(ctx, csrc, o, prev, &sub); err != nil {
			return err
		}
		rep.Chunks++
	}
	if err := verifyListing(ctx, csrc, c.Objects, &sub); err != nil {
		return err
	}
	rep.Bytes += sub.Bytes
	for _, p := range sub.Problems {
		p.Object = continuationDir + p.Object
		rep.Problems = append(rep.Problems, p)
	}
	if len(rep.Problems) == before { // a continuation signed, linked and whole vouches for its chunks
		return dropContinuedCopies(ctx, src, c, rep)
	}
	return nil
}

// unnamedObject is how verifyListing describes an object beside the
// sealed ones that the manifest does not name.
const unnamedObject = "not named by the manifest"

// dropContinuedCopies withdraws the problems verifyListing found with
// chunks beside the sealed ones that are the continuation's own: the
// lost replica uploaded them there as it came back, in the moment a
// survivor sealed the session without them, and then stored them in the
// continuation. Each must hold, byte for byte, the chunk the signed
// continuation names (SHA-256 and size); any other is still reported.
func dropContinuedCopies(ctx context.Context, src Source, c *Continuation, rep *Report) error {
	named := map[string]ManifestObject{}
	for _, o := range c.Objects {
		named[o.Name] = o
	}
	kept := rep.Problems[:0]
	for _, p := range rep.Problems {
		o, ok := named[p.Object]
		if ok && strings.HasPrefix(p.What, unnamedObject) {
			same, err := sameChunk(ctx, src, o)
			if err != nil {
				return err
			}
			if same {
				continue
			}
		}
		kept = append(kept, p)
	}
	rep.Problems = kept
	return nil
}

// sameChunk reports whether the object named o.Name beside the sealed
// ones holds exactly the chunk o describes.
func sameChunk(ctx context.Context, src Source, o ManifestObject) (bool, error) {
	rc, err := src.open(ctx, o.Name)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", o.Name, err)
	}
	return n == o.Size && hex.EncodeToString(h.Sum(nil)) == o.SHA256, nil
}

func checkContinuationSig(ctx context.Context, src Source, pub ed25519.PublicKey, body []byte, rep *Report) {
	sig, err := src.readSmall(ctx, continuationDir+sigObject, maxManifestSize)
	if err != nil {
		rep.problem(continuationDir+sigObject, 0, "missing or unreadable: the continuation is unsigned (%v)", err)
		return
	}
	if err := checkManifestSig(pub, body, sig); err != nil {
		rep.problem(continuationDir+manifestObject, 0, "%v", err)
	}
}

// checkLink checks that c continues the sealed manifest m, and returns the
// SHA-256 its first chunk must name as prev.
func checkLink(ctx context.Context, src Source, c *Continuation, m *Manifest, rep *Report) string {
	cm := continuationDir + manifestObject
	if m == nil {
		rep.problem(cm, 0, "continues a sealed recording, but there is no sealed manifest")
		return c.Continues.SHA256
	}
	if c.Session != m.Session {
		rep.problem(cm, 0, "is for session %q, not %q", c.Session, m.Session)
	}
	body, err := src.readSmall(ctx, manifestObject, maxManifestSize)
	sum := sha256.Sum256(body)
	if err != nil || hex.EncodeToString(sum[:]) != c.Continues.Manifest {
		rep.problem(cm, 0, "does not continue this manifest.json: its SHA-256 is %s, the continuation names %s",
			short(hex.EncodeToString(sum[:])), short(c.Continues.Manifest))
	}
	last := len(m.Objects) - 1
	if c.Continues.Seq != last || c.Continues.SHA256 != m.Objects[last].SHA256 {
		rep.problem(cm, 0, "continues after chunk %d (%s), but the sealed recording ends with chunk %d (%s)",
			c.Continues.Seq, short(c.Continues.SHA256), last, short(m.Objects[last].SHA256))
	}
	return m.Objects[last].SHA256
}

// noteContinuation tells a reader of the text replay which chunks came
// from a continuation, and why.
func noteContinuation(ctx context.Context, src Source, w io.Writer) error {
	c, _, err := src.loadContinuation(ctx)
	if c == nil || len(c.Objects) == 0 {
		return err
	}
	_, err = fmt.Fprintf(w, "# chunks %d-%d are a continuation (%s), stored when the lost replica came back: %s\n",
		c.Objects[0].Seq, c.Objects[len(c.Objects)-1].Seq, continuationDir, c.Reason)
	return err
}
