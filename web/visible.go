package web

import (
	"context"
	"errors"
	"fmt"

	"github.com/sallyport/sallyport/iga"
	"github.com/sallyport/sallyport/iga/sqlstore"
)

// seesAll: auditors and admins see every session; owners only those of the
// identities they own now, as the registry has them.
func seesAll(p *principal) bool { return p.has(RoleAuditor, RoleAdmin) }

// noSession is the one answer for a session id that does not exist and
// for one the viewer may not see, so the two cannot be told apart.
func noSession(id string) error {
	return fmt.Errorf("%w: no session %q", iga.ErrNotFound, id)
}

// visibleSession reads session id if p may see it, and answers noSession
// otherwise.
func (s *Server) visibleSession(ctx context.Context, p *principal, id string) (sqlstore.SessionRecord, error) {
	if s.Sessions == nil {
		return sqlstore.SessionRecord{}, errUnavailable
	}
	rec, err := s.Sessions.Session(ctx, id)
	if errors.Is(err, iga.ErrNotFound) {
		return rec, noSession(id)
	}
	if err != nil {
		return rec, fmt.Errorf("read session %s: %w", id, err)
	}
	ok, err := s.owns(ctx, p, rec.Identity)
	if err != nil {
		return rec, err
	}
	if !ok {
		return sqlstore.SessionRecord{}, noSession(id)
	}
	return rec, nil
}

// owns reports whether p may see the sessions of identity: always for
// auditors and admins, for owners when they own it.
func (s *Server) owns(ctx context.Context, p *principal, identity string) (bool, error) {
	if seesAll(p) {
		return true, nil
	}
	if s.Directory == nil || !p.has(RoleOwner) {
		return false, nil
	}
	id, err := s.Directory.Identity(ctx, identity)
	if errors.Is(err, iga.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read identity %s: %w", identity, err)
	}
	return id.Owner == p.ID, nil
}

// ownedIdentities is the set of identities whose sessions p may see; nil
// means all of them.
func (s *Server) ownedIdentities(ctx context.Context, p *principal) (map[string]bool, error) {
	if seesAll(p) {
		return nil, nil
	}
	out := map[string]bool{}
	if s.Directory == nil || !p.has(RoleOwner) {
		return out, nil
	}
	ids, err := s.Directory.Identities(ctx)
	if err != nil {
		return nil, fmt.Errorf("list identities: %w", err)
	}
	for _, id := range ids {
		if id.Owner == p.ID {
			out[id.ID] = true
		}
	}
	return out, nil
}
