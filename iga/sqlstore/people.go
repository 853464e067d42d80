package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/sallyport/sallyport/iga"
)

const selectPeople = "SELECT id, name, roles, status FROM people"

func scanPerson(s scanner) (iga.Person, error) {
	var p iga.Person
	err := s.Scan(&p.ID, &p.Name, listCol[string]{&p.Roles}, &p.Status)
	return p, err
}

// Person returns one person, or an error wrapping iga.ErrNotFound.
func (r reader) Person(ctx context.Context, id string) (iga.Person, error) {
	p, err := scanPerson(r.queryRow(ctx, selectPeople+" WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return iga.Person{}, fmt.Errorf("person %q: %w", id, iga.ErrNotFound)
	}
	if err != nil {
		return iga.Person{}, fmt.Errorf("read person %q: %w", id, err)
	}
	return p, nil
}

// People returns every person, sorted by id.
func (r reader) People(ctx context.Context) ([]iga.Person, error) {
	rows, err := r.query(ctx, selectPeople+" ORDER BY id")
	ps, err := collect(rows, err, scanPerson)
	if err != nil {
		return nil, fmt.Errorf("read people: %w", err)
	}
	return ps, nil
}

// PutPerson inserts or replaces a person.
func (t *tx) PutPerson(ctx context.Context, p iga.Person) error {
	_, err := t.exec(ctx, `INSERT INTO people (id, name, roles, status) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, roles = excluded.roles, status = excluded.status`,
		p.ID, p.Name, list(p.Roles), string(p.Status))
	if err != nil {
		return fmt.Errorf("store person %q: %w", p.ID, err)
	}
	return nil
}
