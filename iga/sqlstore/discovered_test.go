package sqlstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sallyport/sallyport/iga"
)

// TestDiscoveredAccounts keeps one target's discoveries on every driver:
// first and last seen, gone when missed, new again when back, and a
// target's record leaves other targets alone.
func TestDiscoveredAccounts(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testDiscoveredAccounts(t, b.start(t)(t)) })
	}
}

func testDiscoveredAccounts(t *testing.T, cfg Config) {
	s, ctx := openT(t, cfg), ctxT(t)
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	etl := iga.DiscoveredAccount{Kind: "postgres", Account: "etl", Login: "etl", Password: iga.PasswordSet,
		Attributes: []string{"superuser"}}
	deploy := iga.DiscoveredAccount{Kind: "ssh", Account: "deploy", Login: "deploy",
		Keys: []iga.DiscoveredKey{{Type: "ssh-ed25519", Fingerprint: "SHA256:abc", Options: []string{"from"}}}}

	ch, err := s.RecordDiscovery(ctx, "analytics", []iga.DiscoveredAccount{etl}, t0)
	require.NoError(t, err)
	assert.Equal(t, []string{"etl"}, ch.New)
	_, err = s.RecordDiscovery(ctx, "web-01", []iga.DiscoveredAccount{deploy}, t0)
	require.NoError(t, err)

	t1 := t0.Add(24 * time.Hour)
	ch, err = s.RecordDiscovery(ctx, "analytics", []iga.DiscoveredAccount{etl}, t1)
	require.NoError(t, err)
	assert.Empty(t, ch.New, "seen again, not new")
	got := discoveredT(t, s)
	require.Len(t, got, 2)
	assert.Equal(t, t0, got[0].FirstSeen)
	assert.Equal(t, t1, got[0].LastSeen)
	assert.Equal(t, []string{"superuser"}, got[0].Attributes)
	assert.Equal(t, deploy.Keys, got[1].Keys, "keys round-trip")

	t2 := t1.Add(24 * time.Hour)
	ch, err = s.RecordDiscovery(ctx, "analytics", nil, t2)
	require.NoError(t, err)
	assert.Equal(t, []string{"etl"}, ch.Gone)
	got = discoveredT(t, s)
	assert.Equal(t, t2, got[0].GoneAt, "dropped: gone")
	assert.False(t, got[1].Gone(), "another target's account stays")

	t3 := t2.Add(time.Hour)
	ch, err = s.RecordDiscovery(ctx, "analytics", []iga.DiscoveredAccount{etl}, t3)
	require.NoError(t, err)
	assert.Equal(t, []string{"etl"}, ch.New, "back after gone is new")
	got = discoveredT(t, s)
	assert.False(t, got[0].Gone())
	assert.Equal(t, t3, got[0].FirstSeen)
}

func discoveredT(t *testing.T, s *Store) []iga.DiscoveredAccount {
	t.Helper()
	got, err := s.Discovered(ctxT(t))
	require.NoError(t, err)
	return got
}
