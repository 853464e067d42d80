package sqlredact

import (
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Dialect
		sql  string
		want []string
	}{
		{"one", PostgreSQL, "SELECT 1", []string{"SELECT 1"}},
		{"one with semicolon", PostgreSQL, "SELECT 1;\n", []string{"SELECT 1"}},
		{"three", PostgreSQL, "select 1; insert into t values (1);select 2 where false",
			[]string{"select 1", "insert into t values (1)", "select 2 where false"}},
		{"empty statements skipped", PostgreSQL, ";; SELECT 1 ;; -- done;\n", []string{"SELECT 1"}},
		{"nothing", PostgreSQL, " ; /* ; */ ", nil},
		{"semicolons in literals", PostgreSQL, `SELECT 'a;b', E'c\';d', $x$e;f$x$, "g;h"; SELECT 2`,
			[]string{`SELECT 'a;b', E'c\';d', $x$e;f$x$, "g;h"`, "SELECT 2"}},
		{"semicolons in comments", PostgreSQL, "SELECT 1 /* x; /* nested; */ y; */ -- z;\n + 1; SELECT 2",
			[]string{"SELECT 1 /* x; /* nested; */ y; */ -- z;\n + 1", "SELECT 2"}},
		{"unterminated literal", PostgreSQL, "SELECT 1; SELECT 'a; b", []string{"SELECT 1", "SELECT 'a; b"}},
		{"begin atomic", PostgreSQL,
			"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END; SELECT f()",
			[]string{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END", "SELECT f()"}},
		{"transaction begin is no body", PostgreSQL, "BEGIN; INSERT INTO t VALUES (1); END; SELECT 1",
			[]string{"BEGIN", "INSERT INTO t VALUES (1)", "END", "SELECT 1"}},
		{"mysql quoting", MySQL, "insert into t values ('a;\\'b', \"c;d\", `e;f`); # x;\nselect 2",
			[]string{"insert into t values ('a;\\'b', \"c;d\", `e;f`)", "select 2"}},
		{"mysql three", MySQL, "insert into t values (777); select * from forbidden; delete from t where id=777",
			[]string{"insert into t values (777)", "select * from forbidden", "delete from t where id=777"}},
		{"mysql procedure", MySQL,
			"CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; CASE WHEN 1 THEN SELECT 2; END CASE; WHILE 0 DO SELECT 3; END WHILE; END; CALL p()",
			[]string{"CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; CASE WHEN 1 THEN SELECT 2; END CASE; WHILE 0 DO SELECT 3; END WHILE; END", "CALL p()"}},
		{"mysql transaction begin", MySQL, "BEGIN; SELECT 1; COMMIT", []string{"BEGIN", "SELECT 1", "COMMIT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Split(tc.d, tc.sql); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
