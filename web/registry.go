package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/sallyport/sallyport/iga"
)

// expiringWithin is how far ahead the console warns of certifications
// running out: about one campaign cycle.
const expiringWithin = 30 * 24 * time.Hour

// Risk flags the registry view puts on an identity.
const (
	FlagNotCertified  = "not certified"
	FlagExpiring      = "expiring in 30 days"
	FlagNoOwner       = "no owner"
	FlagOwnerInactive = "owner inactive"
)

// identityRow is one identity with what an auditor should notice about it.
type identityRow struct {
	ID            string             `json:"id"`
	Kind          iga.Kind           `json:"kind"`
	State         iga.State          `json:"state"`
	Owner         string             `json:"owner,omitempty"`
	Environment   string             `json:"environment,omitempty"`
	Certification *iga.Certification `json:"certification,omitempty"`
	Entitlements  []iga.Entitlement  `json:"entitlements"`
	LastUsed      time.Time          `json:"last_used,omitzero"`
	Flags         []string           `json:"flags"`
	Findings      []iga.Finding      `json:"hygiene,omitempty"`
	// Suggestion is set on the registry page only (not in the API).
	Suggestion *suggestionView `json:"suggestion,omitempty"`
}

func (s *Server) identityRows(ctx context.Context) ([]identityRow, error) {
	if s.Directory == nil {
		return nil, errUnavailable
	}
	ids, err := s.Directory.Identities(ctx)
	if err != nil {
		return nil, fmt.Errorf("read identities: %w", err)
	}
	people, err := s.Directory.People(ctx)
	if err != nil {
		return nil, fmt.Errorf("read people: %w", err)
	}
	active := map[string]bool{}
	for _, p := range people {
		active[p.ID] = p.Status == iga.PersonActive
	}
	findings, err := s.hygiene(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]identityRow, 0, len(ids))
	for _, id := range ids {
		rows = append(rows, identityRow{ID: id.ID, Kind: id.Kind, State: id.State, Owner: id.Owner,
			Environment: id.Environment, Certification: id.Certification, Entitlements: id.Entitlements,
			LastUsed: id.LastUsed, Flags: riskFlags(id, active, s.now()), Findings: findings[id.ID]})
	}
	return rows, nil
}

// hygiene groups the hygiene findings by identity.
func (s *Server) hygiene(ctx context.Context) (map[string][]iga.Finding, error) {
	out := map[string][]iga.Finding{}
	if s.Hygiene == nil {
		return out, nil
	}
	fs, err := s.Hygiene(ctx)
	if err != nil {
		return nil, fmt.Errorf("read hygiene findings: %w", err)
	}
	for _, f := range fs {
		out[f.Identity] = append(out[f.Identity], f)
	}
	return out, nil
}

// riskFlags says what is wrong with an identity's governance.
func riskFlags(id iga.Identity, activeOwner map[string]bool, now time.Time) []string {
	flags := []string{}
	switch {
	case id.Owner == "":
		flags = append(flags, FlagNoOwner)
	case !activeOwner[id.Owner]:
		flags = append(flags, FlagOwnerInactive)
	}
	c := id.Certification
	switch {
	case c == nil || c.Decision != iga.DecisionCertify || !now.Before(c.Until):
		flags = append(flags, FlagNotCertified)
	case c.Until.Sub(now) <= expiringWithin:
		flags = append(flags, FlagExpiring)
	}
	return flags
}

func (s *Server) registryPage(w http.ResponseWriter, r *http.Request, p *principal) {
	rows, err := s.identityRows(r.Context())
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	s.withSuggestions(r.Context(), p, rows)
	s.render(w, r, p, http.StatusOK, "registry.html", "Registry", rows)
}
