package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
)

// reviewsView lists break-glass reviews: pending first (earliest due),
// then completed.
type reviewsView struct {
	Pending   []reviewRow `json:"pending"`
	Completed []reviewRow `json:"completed"`
	Outcomes  []string    `json:"-"`
	// Transfers are the open ownership-transfer items of leavers'
	// identities (issue 22): an owner sees those assigned to them.
	Transfers []iga.Transfer `json:"transfers"`
}

type reviewRow struct {
	iga.Review
	Overdue bool `json:"overdue"`
	// Grant is the reviewed grant: its reason and ticket are the evidence.
	GrantReason string `json:"grant_reason,omitempty"`
	GrantTicket string `json:"grant_ticket,omitempty"`
	// Sessions ran under the grant: what the reviewer replays.
	Sessions []apiSession `json:"sessions"`
}

// reviews returns what p may see: auditors and admins all reviews, an
// owner the ones assigned to them.
func (s *Server) reviews(ctx context.Context, p *principal) (reviewsView, error) {
	v := reviewsView{Outcomes: iga.Outcomes}
	if s.Directory == nil {
		return v, errUnavailable
	}
	all, err := s.Directory.Reviews(ctx)
	if err != nil {
		return v, fmt.Errorf("read reviews: %w", err)
	}
	grants, err := s.Directory.Grants(ctx, "")
	if err != nil {
		return v, fmt.Errorf("read grants: %w", err)
	}
	byID := map[string]iga.Grant{}
	for _, g := range grants {
		byID[g.ID] = g
	}
	for _, rv := range all {
		if !p.has(RoleAuditor, RoleAdmin) && rv.AssignedTo != p.ID {
			continue
		}
		row := reviewRow{Review: rv, Overdue: rv.Overdue(s.now()), GrantReason: byID[rv.Grant].Reason, GrantTicket: byID[rv.Grant].Ticket}
		if row.Sessions, err = s.grantSessions(ctx, rv); err != nil {
			return v, err
		}
		if rv.Pending() {
			v.Pending = append(v.Pending, row)
		} else {
			v.Completed = append(v.Completed, row)
		}
	}
	v.Transfers, err = s.openTransfers(ctx, p)
	return v, err
}

// openTransfers lists the open transfer items p may act on, when the
// Directory keeps them (iga.SCIMReader); none otherwise.
func (s *Server) openTransfers(ctx context.Context, p *principal) ([]iga.Transfer, error) {
	out := []iga.Transfer{} // an empty list, never null, in the API
	tr, ok := s.Directory.(iga.SCIMReader)
	if !ok {
		return out, nil
	}
	all, err := tr.Transfers(ctx)
	if err != nil {
		return nil, fmt.Errorf("read transfers: %w", err)
	}
	for _, t := range all {
		if t.Open() && (p.has(RoleAuditor, RoleAdmin) || t.AssignedTo == p.ID) {
			out = append(out, t)
		}
	}
	return out, nil
}

func (s *Server) reviewsPage(w http.ResponseWriter, r *http.Request, p *principal) {
	v, err := s.reviews(r.Context(), p)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	s.render(w, r, p, http.StatusOK, "reviews.html", "Break-glass reviews", v)
}

// completeReview records the verdict; the registry refuses the person who
// opened the grant (dual control) and anyone neither assigned nor auditor.
func (s *Server) completeReview(r *http.Request, p *principal) (iga.Review, error) {
	if s.Workflows == nil {
		return iga.Review{}, errUnavailable
	}
	return s.Workflows.CompleteReview(r.Context(), iga.ReviewCompletion{ID: r.PathValue("id"), By: p.ID,
		Outcome: r.PostFormValue("outcome"), Note: r.PostFormValue("note")})
}

func (s *Server) completeReviewForm(w http.ResponseWriter, r *http.Request, p *principal) {
	if _, err := s.completeReview(r, p); err != nil {
		s.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, "/reviews", http.StatusSeeOther)
}

// campaignView is one campaign with the items p sees: an owner their own,
// auditors and admins all.
type campaignView struct {
	iga.Campaign
	Items []iga.CampaignItem `json:"items"`
	Open  bool               `json:"open"`
}

func (s *Server) campaigns(ctx context.Context, p *principal) ([]campaignView, error) {
	if s.Directory == nil {
		return nil, errUnavailable
	}
	cs, err := s.Directory.Campaigns(ctx)
	if err != nil {
		return nil, fmt.Errorf("read campaigns: %w", err)
	}
	// Each item shows what its identity may do now: what certify confirms.
	ids, err := s.Directory.Identities(ctx)
	if err != nil {
		return nil, fmt.Errorf("read identities: %w", err)
	}
	out := make([]campaignView, 0, len(cs))
	for _, c := range cs {
		items, err := s.Directory.CampaignItems(ctx, c.ID)
		if err != nil {
			return nil, fmt.Errorf("read items of campaign %s: %w", c.ID, err)
		}
		v := campaignView{Campaign: c, Open: c.ClosedAt.IsZero()}
		for _, it := range iga.WithEntitlements(items, ids) {
			if p.has(RoleAuditor, RoleAdmin) || it.Reviewer == p.ID {
				v.Items = append(v.Items, it)
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Server) campaignsPage(w http.ResponseWriter, r *http.Request, p *principal) {
	cs, err := s.campaigns(r.Context(), p)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	s.render(w, r, p, http.StatusOK, "campaigns.html", "Certification campaigns", cs)
}

// decide certifies or revokes one item; the registry allows only the
// item's reviewer (the identity's owner).
func (s *Server) decide(r *http.Request, p *principal) (iga.CampaignItem, error) {
	if s.Workflows == nil {
		return iga.CampaignItem{}, errUnavailable
	}
	return s.Workflows.DecideCampaignItem(r.Context(), iga.CampaignDecision{Campaign: r.PathValue("id"),
		Identity: strings.TrimSpace(r.PostFormValue("identity")), By: p.ID,
		Decision: r.PostFormValue("decision"), Note: r.PostFormValue("note")})
}

func (s *Server) decideForm(w http.ResponseWriter, r *http.Request, p *principal) {
	if _, err := s.decide(r, p); err != nil {
		s.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, "/campaigns", http.StatusSeeOther)
}

// grantSessions lists the sessions run under the reviewed grant.
func (s *Server) grantSessions(ctx context.Context, rv iga.Review) ([]apiSession, error) {
	out := []apiSession{}
	if s.Sessions == nil {
		return out, nil
	}
	recs, err := s.Sessions.Sessions(ctx, sqlstore.SessionFilter{Identity: rv.Identity, Target: rv.Target})
	if err != nil {
		return nil, fmt.Errorf("read sessions of grant %s: %w", rv.Grant, err)
	}
	for _, r := range recs {
		if r.BreakglassGrant == rv.Grant {
			out = append(out, toAPISession(r))
		}
	}
	return out, nil
}
