package recorder

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SealResult says what SealFromStore found and did.
type SealResult struct {
	// Sealed: a manifest was written now. Already: one was in the store,
	// and nothing was written (a second run, or a second sealer).
	Sealed, Already bool
	// NothingStored: the store holds no session.json of the session, so
	// there is nothing to seal (the replica died before its first upload).
	NothingStored bool
	// Manifest is the manifest written, or the one found.
	Manifest Manifest
	// Beyond lists the chunk objects in the store that the seal does not
	// cover because the hash chain breaks before them; Break says where
	// and why. Verify reports them as objects the manifest does not name.
	Beyond []string
	Break  string
}

// Chunks is how many chunks the manifest covers.
func (r SealResult) Chunks() int { return max(len(r.Manifest.Objects)-1, 0) }

// SealFromStore seals the recording of session id, started at started,
// from what reached store, for a replica that died with the session live
// and never came back: a manifest in state incomplete naming session.json
// and every chunk of the unbroken hash chain from it, signed with key,
// whose reason is the caller's (who was lost, and when) followed by what
// the seal covers. It never replaces a manifest: with one in the store it
// only reports it. Chunks past a break in the chain are left where they
// are, reported in the result and the reason.
func SealFromStore(ctx context.Context, store Store, key ed25519.PrivateKey, id string, started time.Time, reason string) (SealResult, error) {
	src := SessionSource(store, id, started)
	var res SealResult
	if m, err := foundManifest(ctx, src); m != nil || err != nil {
		res.Already = m != nil
		if m != nil {
			res.Manifest = *m
		}
		return res, err
	}
	metaBody, err := src.readSmall(ctx, sessionObject, maxManifestSize)
	if errors.Is(err, ErrNotFound) {
		res.NothingStored = true
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("seal %s from the store: %w", id, err)
	}
	var meta SessionMeta
	if err := json.Unmarshal(metaBody, &meta); err != nil {
		return res, fmt.Errorf("seal %s from the store: parse session.json: %w", id, err)
	}
	entries, err := storedChain(ctx, src, metaBody, &res)
	if err != nil {
		return res, err
	}
	m := incompleteManifest(id, meta.StartedAt, entries)
	m.Reason = sealReason(reason, len(entries)-1, res)
	m.Signer = fingerprintOf(key)
	return putSeal(ctx, src, key, m, res)
}

// foundManifest returns the manifest in the store, nil when there is none.
// One that does not parse is an error: it is never replaced.
func foundManifest(ctx context.Context, src Source) (*Manifest, error) {
	m, body, err := src.loadManifest(ctx)
	if err != nil && body != nil {
		return nil, fmt.Errorf("seal %s from the store: the manifest there does not parse, left as it is: %w", src.id, err)
	}
	if err != nil {
		return nil, fmt.Errorf("seal %s from the store: %w", src.id, err)
	}
	return m, nil
}

// storedChain reads the chunks in the store in order, from chunk 1, and
// returns the log entries of the unbroken chain; the chunk names past its
// end go to res.Beyond.
func storedChain(ctx context.Context, src Source, metaBody []byte, res *SealResult) ([]logEntry, error) {
	names, err := src.chainOrder(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("seal %s from the store: list chunks: %w", src.id, err)
	}
	sum := sha256.Sum256(metaBody)
	entries := []logEntry{{ManifestObject: ManifestObject{Name: sessionObject, Size: int64(len(metaBody)),
		SHA256: hex.EncodeToString(sum[:])}}}
	for i, name := range names {
		seq := len(entries)
		if name != chunkName(seq) {
			res.Beyond, res.Break = names[i:], fmt.Sprintf("chunk %d is missing", seq)
			break
		}
		e, ok, err := storedEntry(ctx, src, name, seq, entries[seq-1].SHA256)
		if err != nil {
			return nil, err
		}
		if !ok {
			res.Beyond, res.Break = names[i:], fmt.Sprintf("chunk %d is damaged or does not continue the chain", seq)
			break
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// storedEntry reads one chunk from the store; ok is false when it is not
// chunk seq following prev, whole. The error is for a store that fails.
func storedEntry(ctx context.Context, src Source, name string, seq int, prev string) (logEntry, bool, error) {
	rc, err := src.open(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return logEntry{}, false, nil
	}
	if err != nil {
		return logEntry{}, false, fmt.Errorf("seal %s from the store: read %s: %w", src.id, name, err)
	}
	defer rc.Close()
	e, ok := readEntry(rc, src.id, seq, prev)
	if err := ctx.Err(); err != nil {
		return e, false, err
	}
	return e, ok, nil
}

func sealReason(reason string, chunks int, res SealResult) string {
	var b strings.Builder
	b.WriteString(reason)
	fmt.Fprintf(&b, "; sealed from the recording store with the %d chunks that reached it", chunks)
	if len(res.Beyond) > 0 {
		fmt.Fprintf(&b, "; %s: %d chunk objects in the store, %s to %s, are not covered",
			res.Break, len(res.Beyond), res.Beyond[0], res.Beyond[len(res.Beyond)-1])
	}
	return b.String()
}

// putSeal writes the signature and then the manifest, each only where
// there is none (writeSeal): should another replica seal the session
// meanwhile, its seal stands and is reported.
func putSeal(ctx context.Context, src Source, key ed25519.PrivateKey, m Manifest, res SealResult) (SealResult, error) {
	body, sig, err := signedManifest(m, key)
	if err != nil {
		return res, err
	}
	found, err := foundManifest(ctx, src)
	if found == nil && err == nil {
		err = writeSeal(ctx, src.store, src.dir, sig, body)
		if !errors.Is(err, ErrExists) {
			if err != nil {
				return res, fmt.Errorf("seal %s from the store: %w", src.id, err)
			}
			res.Sealed, res.Manifest = true, m
			return res, nil
		}
		found, err = awaitManifest(ctx, src) // the race was lost
	}
	if found != nil {
		res.Already, res.Manifest = true, *found
	}
	return res, err
}

// sealRaceWait bounds how long the loser of a race to seal a session
// waits for the winner's manifest to follow its signature; sealRacePoll
// is how often it looks.
const (
	sealRaceWait = 10 * time.Second
	sealRacePoll = 50 * time.Millisecond
)

// writeSeal stores a recording's signature and then its manifest in dir,
// each created only where there is none (createObject): a signed manifest
// is never replaced. Of two writers of different seals only the first to
// create the signature goes on to the manifest; the other gets ErrExists
// (wrapped), and the winner's manifest follows. A retry of the same seal
// succeeds: Ed25519 signs the same body with the same bytes.
func writeSeal(ctx context.Context, store Store, dir string, sig, body []byte) error {
	if err := createObject(ctx, store, dir+sigObject, sig); err != nil {
		return err
	}
	return createObject(ctx, store, dir+manifestObject, body)
}

// awaitManifest waits for the manifest of the seal that won a race, up to
// sealRaceWait; its writer may have stopped between its signature and
// its manifest, which is then an error, retried by the caller's next run.
func awaitManifest(ctx context.Context, src Source) (*Manifest, error) {
	deadline := time.Now().Add(sealRaceWait)
	for {
		m, err := foundManifest(ctx, src)
		if m != nil || err != nil {
			return m, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("seal %s: another writer's signature is in the store, but no manifest followed within %s; both left as they are",
				src.id, sealRaceWait)
		}
		select {
		case <-time.After(sealRacePoll):
		case <-ctx.Done():
			return nil, fmt.Errorf("seal %s: wait for the manifest of another writer: %w", src.id, ctx.Err())
		}
	}
}

// signedManifest encodes m, signed by key, as seal writes it: the body and
// its armored SSHSIG.
func signedManifest(m any, key ed25519.PrivateKey) (body, sig []byte, err error) {
	body, err = json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("encode manifest: %w", err)
	}
	body = append(body, '\n')
	sig, err = signManifest(key, body)
	return body, sig, err
}

func fingerprintOf(key ed25519.PrivateKey) string {
	return Fingerprint(key.Public().(ed25519.PublicKey))
}
