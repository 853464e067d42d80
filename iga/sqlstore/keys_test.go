package sqlstore

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testKeyFingerprints(t *testing.T, fresh func(*testing.T) Config) {
	cfg := fresh(t)
	a, b := openT(t, cfg), openT(t, cfg) // two replicas on one registry
	ctx := ctxT(t)
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

	require.NoError(t, a.CheckKeyFingerprint(ctx, "ssh-user-ca", "SHA256:ca-one", now), "the first replica records")
	require.NoError(t, a.CheckKeyFingerprint(ctx, "recording", "SHA256:rec-one", now))
	require.NoError(t, b.CheckKeyFingerprint(ctx, "ssh-user-ca", "SHA256:ca-one", now), "the same key is accepted")

	tests := []struct {
		purpose, got, recorded string
	}{
		{"ssh-user-ca", "SHA256:ca-two", "SHA256:ca-one"},
		{"recording", "SHA256:rec-two", "SHA256:rec-one"},
	}
	for _, tc := range tests {
		t.Run(tc.purpose, func(t *testing.T) {
			err := b.CheckKeyFingerprint(ctx, tc.purpose, tc.got, now)
			var mm *KeyMismatchError
			require.True(t, errors.As(err, &mm), "got %v, want a KeyMismatchError", err)
			assert.Equal(t, KeyMismatchError{Purpose: tc.purpose, Recorded: tc.recorded, Got: tc.got}, *mm)
			assert.ErrorContains(t, err, tc.recorded)
			assert.ErrorContains(t, err, tc.got)
		})
	}
	// A refused key does not replace the recorded one.
	require.NoError(t, a.CheckKeyFingerprint(ctx, "recording", "SHA256:rec-one", now))
}
