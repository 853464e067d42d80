package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// consoleSuggestWindow is how far back the console's registry page looks
// for an identity's use: the default of `iga suggest --days`. The window is
// read when the page is opened — the identity's sessions and each one's
// recording, for every identity the viewer may tighten — which is fine for
// tens of identities and a few hundred sessions; cache it if pages slow.
const consoleSuggestWindow = 90 * 24 * time.Hour

// webSuggestions is web.Suggestions over the session index and the
// recordings: `iga suggest ID` for the console.
type webSuggestions struct {
	ap *app
}

// Suggest returns identity's suggested registry entry and what its
// entitlements grant but it did not use in the window.
func (s webSuggestions) Suggest(ctx context.Context, identity string) (string, []string, error) {
	id, err := s.ap.store.Identity(ctx, identity)
	if err != nil {
		return "", nil, fmt.Errorf("suggest for %s: %w", identity, err)
	}
	since := time.Now().Add(-consoleSuggestWindow)
	obs, n, unread, err := observe(ctx, s.ap, id.ID, since)
	if err != nil {
		return "", nil, fmt.Errorf("suggest for %s: %w", identity, err)
	}
	header := fmt.Sprintf("Suggested for %s from %d session(s) since %s.", id.ID, n, since.UTC().Format(time.DateOnly))
	if unread > 0 {
		header += fmt.Sprintf("\nWARNING: the recordings of %d session(s) are not readable yet; their commands are missing below.", unread)
	}
	sg := iga.Suggest(id, obs[id.ID])
	out, err := iga.MarshalSuggestion(id, sg, header)
	if err != nil {
		return "", nil, err
	}
	return string(out), sg.Unused, nil
}
