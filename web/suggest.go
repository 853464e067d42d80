package web

import (
	"context"

	"github.com/sallyport/sallyport/iga"
)

// Suggestions proposes, from what an identity did recently, the smallest
// entitlements that would have admitted all of it (`sallyport iga
// suggest`); cmd/sallyport adapts iga.Suggest over the session index and
// the recordings.
type Suggestions interface {
	// Suggest returns identity's suggested registry entry as YAML that
	// `iga apply -f` accepts, and what its entitlements grant that it did
	// not use, one line each.
	Suggest(ctx context.Context, identity string) (yaml string, unused []string, err error)
}

// suggestionView is the registry page's suggestion for one identity.
type suggestionView struct {
	YAML   string   `json:"yaml,omitempty"`
	Unused []string `json:"unused,omitempty"`
	Failed bool     `json:"failed,omitempty"`
}

// withSuggestions adds a suggestion to each row whose owner p is, or to
// every row for auditors and admins. Each is computed now, from the
// window's sessions and recordings: one read per identity and page view,
// which is fine for tens of identities; cache it if the page gets slow.
func (s *Server) withSuggestions(ctx context.Context, p *principal, rows []identityRow) {
	if s.Suggestions == nil {
		return
	}
	for i, row := range rows {
		if row.State == iga.StateDeprovisioned || !(p.has(RoleAuditor, RoleAdmin) || row.Owner == p.ID) {
			continue
		}
		rows[i].Suggestion = s.suggestion(ctx, row)
	}
}

// suggestion is row's suggestion when its entitlements allow exec of any
// command or grant more than was used; nil when they fit its use.
func (s *Server) suggestion(ctx context.Context, row identityRow) *suggestionView {
	yaml, unused, err := s.Suggestions.Suggest(ctx, row.ID)
	if err != nil {
		// One identity's unreadable history must not take the registry
		// page down: the section says so and the log has why.
		s.logger().Warn("web: suggest entitlements", "identity", row.ID, "err", err)
		return &suggestionView{Failed: true}
	}
	if len(unused) == 0 && !execUnrestricted(row.Entitlements) {
		return nil
	}
	return &suggestionView{YAML: yaml, Unused: unused}
}

// execUnrestricted reports whether an entitlement allows exec without commands.
func execUnrestricted(es []iga.Entitlement) bool {
	for _, e := range es {
		for _, a := range e.Actions {
			if a == iga.ActionExec && len(e.Commands) == 0 {
				return true
			}
		}
	}
	return false
}
