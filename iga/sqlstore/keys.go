package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// KeyMismatchError says a key differs from the one the registry recorded
// for the same purpose: another replica signs with another key.
type KeyMismatchError struct {
	Purpose  string // ssh-user-ca, recording
	Recorded string // the fingerprint the registry holds
	Got      string // the fingerprint offered
}

func (e *KeyMismatchError) Error() string {
	return fmt.Sprintf("%s key %s differs from %s, the one the registry recorded first", e.Purpose, e.Got, e.Recorded)
}

// CheckKeyFingerprint records fingerprint as the key for purpose when the
// registry has none yet, and otherwise compares it with the recorded one:
// a different key is a *KeyMismatchError. Replicas call it at start-up so
// that they all sign with the same keys.
func (s *Store) CheckKeyFingerprint(ctx context.Context, purpose, fingerprint string, now time.Time) error {
	var recorded string
	err := s.Update(ctx, func(t iga.Tx) error {
		var e encoder
		err := t.(*tx).insert(ctx, &e, `INSERT INTO key_fingerprints (purpose, fingerprint, recorded_at)
			VALUES (?, ?, ?) ON CONFLICT (purpose) DO NOTHING`, purpose, fingerprint, e.time(now))
		if err != nil {
			return err
		}
		return t.(*tx).queryRow(ctx, "SELECT fingerprint FROM key_fingerprints WHERE purpose = ?", purpose).Scan(&recorded)
	})
	if err != nil {
		return fmt.Errorf("check %s key fingerprint: %w", purpose, err)
	}
	if recorded != fingerprint {
		return &KeyMismatchError{Purpose: purpose, Recorded: recorded, Got: fingerprint}
	}
	return nil
}
