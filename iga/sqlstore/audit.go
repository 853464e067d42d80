package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sallyport/sallyport/iga"
)

const auditColumns = `id, occurred_at, event_type, actor, identity_id, target, action, source, allowed, reasons, detail`

func scanAudit(s scanner) (e iga.AuditEvent, err error) {
	return e, s.Scan(&e.ID, timeCol{&e.Time}, &e.Type, &e.Actor, &e.Identity, &e.Target, &e.Action,
		&e.Source, flagCol{&e.Allow}, listCol[iga.Reason]{&e.Reasons}, &e.Detail)
}

// Audit returns the events matching f, oldest first. With f.Limit it
// returns the newest f.Limit of them, still oldest first.
func (r reader) Audit(ctx context.Context, f iga.AuditFilter) ([]iga.AuditEvent, error) {
	var e encoder
	var where []string
	var args []any
	if f.Identity != "" {
		where, args = append(where, "identity_id = ?"), append(args, f.Identity)
	}
	if f.Type != "" {
		where, args = append(where, "event_type = ?"), append(args, f.Type)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "occurred_at >= ?"), append(args, e.time(f.Since))
	}
	if e.err != nil {
		return nil, fmt.Errorf("read audit: since: %w", e.err)
	}
	if f.Limit > 0 {
		args = append(args, f.Limit)
	}
	rows, err := r.query(ctx, auditQuery(where, f.Limit > 0), args...)
	evs, err := collect(rows, err, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	return evs, nil
}

// auditQuery selects the events matching where; with limit, the newest
// of them up to a last ? argument, re-sorted oldest first.
func auditQuery(where []string, limit bool) string {
	q := "SELECT " + auditColumns + " FROM audit_events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if !limit {
		return q + " ORDER BY occurred_at, id"
	}
	return "SELECT * FROM (" + q + " ORDER BY occurred_at DESC, id DESC LIMIT ?) newest ORDER BY occurred_at, id"
}

// AppendAudit appends an audit event; the store assigns its ID. An event
// without a time is stamped with the time it is appended: every event
// happened at some time, and the trail is ordered by it.
func (t *tx) AppendAudit(ctx context.Context, ev iga.AuditEvent) error {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	var e encoder
	err := t.insert(ctx, &e, `INSERT INTO audit_events
		(occurred_at, event_type, actor, identity_id, target, action, source, allowed, reasons, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.time(ev.Time), ev.Type, ev.Actor, ev.Identity, ev.Target, string(ev.Action), ev.Source,
		flag(ev.Allow), list(ev.Reasons), ev.Detail)
	if err != nil {
		return fmt.Errorf("append %s audit event for %q: %w", ev.Type, ev.Identity, err)
	}
	return nil
}
