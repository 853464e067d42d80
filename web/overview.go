package web

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"slices"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
)

// overview is the console's front page.
type overview struct {
	Live           []sqlstore.SessionRecord
	OpenGrants     []iga.Grant
	OverdueReviews []iga.Review
	Expiring       []identityRow
	SessionsChart  template.HTML
	RefusalsChart  template.HTML
}

// home is the overview for auditors and admins; owners, who may not read
// sessions, land on their break-glass reviews.
func (s *Server) home(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.has(readers...) {
		http.Redirect(w, r, "/reviews", http.StatusFound)
		return
	}
	s.overviewPage(w, r, p)
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request, p *principal) {
	o, err := s.overview(r)
	if err != nil {
		s.fail(w, r, p, err)
		return
	}
	s.render(w, r, p, http.StatusOK, "overview.html", "Overview", o)
}

func (s *Server) overview(r *http.Request) (overview, error) {
	var o overview
	var err error
	if o.Live, err = s.liveSessions(r); err != nil {
		return o, err
	}
	if err := s.addGovernance(r.Context(), &o); err != nil {
		return o, err
	}
	if o.SessionsChart, err = s.sessionsChart(r.Context()); err != nil {
		return o, err
	}
	o.RefusalsChart, err = s.refusalsChart(r.Context())
	return o, err
}

func (s *Server) addGovernance(ctx context.Context, o *overview) error {
	if s.Directory == nil {
		return nil
	}
	now := s.now()
	grants, err := s.Directory.Grants(ctx, "")
	if err != nil {
		return fmt.Errorf("read grants: %w", err)
	}
	for _, g := range grants {
		if g.Open(now) {
			o.OpenGrants = append(o.OpenGrants, g)
		}
	}
	reviews, err := s.Directory.Reviews(ctx)
	if err != nil {
		return fmt.Errorf("read reviews: %w", err)
	}
	for _, rv := range reviews {
		if rv.Overdue(now) {
			o.OverdueReviews = append(o.OverdueReviews, rv)
		}
	}
	rows, err := s.identityRows(ctx)
	for _, row := range rows {
		if slices.Contains(row.Flags, FlagExpiring) {
			o.Expiring = append(o.Expiring, row)
		}
	}
	return err
}

// sessionsChart: sessions started per day over the last 30, by protocol.
func (s *Server) sessionsChart(ctx context.Context) (template.HTML, error) {
	var items []keyedTime
	if s.Sessions != nil {
		since := s.now().AddDate(0, 0, -chartDays)
		recs, err := s.Sessions.Sessions(ctx, sqlstore.SessionFilter{Since: since})
		if err != nil {
			return "", fmt.Errorf("read sessions for the chart: %w", err)
		}
		for _, r := range recs {
			items = append(items, keyedTime{r.Protocol, r.StartedAt})
		}
	}
	labels, ss := countByDay(s.now(), items)
	return stackedBars("Sessions per day by protocol, last 30 days", labels, ss), nil
}

// refusalsChart: refused admissions per day over the last 30, by reason
// (a decision with several reasons counts under each).
func (s *Server) refusalsChart(ctx context.Context) (template.HTML, error) {
	var items []keyedTime
	if s.Directory != nil {
		since := s.now().AddDate(0, 0, -chartDays)
		events, err := s.Directory.Audit(ctx, iga.AuditFilter{Type: "decision", Since: since})
		if err != nil {
			return "", fmt.Errorf("read refusals for the chart: %w", err)
		}
		for _, e := range events {
			if e.Allow {
				continue
			}
			for _, rs := range e.Reasons {
				items = append(items, keyedTime{rs.Code, e.Time})
			}
		}
	}
	labels, ss := countByDay(s.now(), items)
	return stackedBars("Refusals per day by reason, last 30 days", labels, ss), nil
}
