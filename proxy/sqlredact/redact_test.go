package sqlredact

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		name   string
		d      Dialect
		sql    string
		want   string
		params []int
	}{
		// PostgreSQL roles.
		{"create role", PostgreSQL, "CREATE ROLE app LOGIN PASSWORD 's3cret'", "CREATE ROLE app LOGIN PASSWORD '[redacted]'", nil},
		{"alter role with encrypted", PostgreSQL, "alter role app with encrypted password 's3cret' valid until 'infinity'",
			"alter role app with encrypted password '[redacted]' valid until 'infinity'", nil},
		{"create user", PostgreSQL, "CREATE USER bob PASSWORD 'x' IN ROLE staff", "CREATE USER bob PASSWORD '[redacted]' IN ROLE staff", nil},
		{"psql \\password verifier", PostgreSQL, `ALTER USER "bob" PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy'`,
			`ALTER USER "bob" PASSWORD '[redacted]'`, nil},
		{"doubled quotes", PostgreSQL, "ALTER ROLE a PASSWORD 'it''s PASSWORD ''x'' -- not a comment'; SELECT 1",
			"ALTER ROLE a PASSWORD '[redacted]'; SELECT 1", nil},
		{"E string", PostgreSQL, `ALTER ROLE a PASSWORD E'a\'b''c\\' VALID UNTIL 'x'`, `ALTER ROLE a PASSWORD '[redacted]' VALID UNTIL 'x'`, nil},
		{"dollar quoted", PostgreSQL, "ALTER ROLE a PASSWORD $pw$it's $$ ' a secret$pw$", "ALTER ROLE a PASSWORD '[redacted]'", nil},
		{"empty dollar tag", PostgreSQL, "ALTER ROLE a PASSWORD $$x'y$$;", "ALTER ROLE a PASSWORD '[redacted]';", nil},
		{"backslash read either way", PostgreSQL, `ALTER ROLE a PASSWORD 'ab\' tail'`, `ALTER ROLE a PASSWORD '[redacted]'`, nil},
		{"comments between", PostgreSQL, "ALTER ROLE a /* c */ PASSWORD -- c\n 'x'", "ALTER ROLE a /* c */ PASSWORD -- c\n '[redacted]'", nil},
		{"password null", PostgreSQL, "ALTER ROLE a PASSWORD NULL", "ALTER ROLE a PASSWORD NULL", nil},
		{"parameter", PostgreSQL, "ALTER ROLE a PASSWORD $2 VALID UNTIL $1", "ALTER ROLE a PASSWORD $2 VALID UNTIL $1", []int{1}},
		// PostgreSQL foreign servers and connection strings.
		{"user mapping", PostgreSQL, "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'p4ss')",
			"CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password '[redacted]')", nil},
		{"alter user mapping", PostgreSQL, "ALTER USER MAPPING FOR bob SERVER s OPTIONS (SET password 'n3w', ADD sslpassword 'k')",
			"ALTER USER MAPPING FOR bob SERVER s OPTIONS (SET password '[redacted]', ADD sslpassword '[redacted]')", nil},
		{"drop option", PostgreSQL, "ALTER USER MAPPING FOR bob SERVER s OPTIONS (DROP password)",
			"ALTER USER MAPPING FOR bob SERVER s OPTIONS (DROP password)", nil},
		{"create server", PostgreSQL, "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'h', password 'p')",
			"CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'h', password '[redacted]')", nil},
		{"dblink conninfo", PostgreSQL, "SELECT dblink_connect('c', 'host=h password=s3cret dbname=d')",
			"SELECT dblink_connect('c', 'host=h password=[redacted] dbname=d')", nil},
		{"conninfo quoted value", PostgreSQL, `SELECT dblink_connect('password = ''a b\'' c'' user=u')`,
			`SELECT dblink_connect('password = ''[redacted]'' user=u')`, nil},
		{"subscription", PostgreSQL, "CREATE SUBSCRIPTION s CONNECTION 'host=h PASSWORD=x' PUBLICATION p",
			"CREATE SUBSCRIPTION s CONNECTION 'host=h PASSWORD=[redacted]' PUBLICATION p", nil},
		{"url", PostgreSQL, "SELECT dblink('postgresql://bob:s3cret@db:5432/app', 'SELECT 1')",
			"SELECT dblink('postgresql://bob:[redacted]@db:5432/app', 'SELECT 1')", nil},
		{"statement in a literal", PostgreSQL, "DO $$BEGIN EXECUTE 'ALTER ROLE a PASSWORD ''x'''; END$$",
			"DO $$BEGIN EXECUTE 'ALTER ROLE a PASSWORD ''[redacted]'''; END$$", nil},
		{"dblink_exec", PostgreSQL, "SELECT dblink_exec('c', 'CREATE ROLE r PASSWORD ''pw''')",
			"SELECT dblink_exec('c', 'CREATE ROLE r PASSWORD ''[redacted]''')", nil},
		// Not passwords.
		{"column", PostgreSQL, "SELECT password, 'x' FROM users WHERE id = '1'", "SELECT password, 'x' FROM users WHERE id = '1'", nil},
		{"comment", PostgreSQL, "SELECT 'a' -- password 'b'\n, 'c' /* PASSWORD 'd' */", "SELECT 'a' -- password 'b'\n, 'c' /* PASSWORD 'd' */", nil},
		{"quoted identifier", PostgreSQL, `SELECT "password" = 'x' FROM t`, `SELECT "password" = 'x' FROM t`, nil},
		{"column type", PostgreSQL, "CREATE TABLE t (password varchar(10) DEFAULT 'x')", "CREATE TABLE t (password varchar(10) DEFAULT 'x')", nil},
		{"setting", PostgreSQL, "SET password_encryption = 'scram-sha-256'", "SET password_encryption = 'scram-sha-256'", nil},
		{"prose", PostgreSQL, "COMMENT ON ROLE a IS 'rotate the password: see https://wiki/x'",
			"COMMENT ON ROLE a IS 'rotate the password: see https://wiki/x'", nil},
		{"no keyword", PostgreSQL, "SELECT * FROM orders WHERE id = $1", "SELECT * FROM orders WHERE id = $1", nil},
		// But a password column compared or set is a password.
		{"password column value", PostgreSQL, "UPDATE users SET password = 'h' WHERE rolpassword = $1",
			"UPDATE users SET password = '[redacted]' WHERE rolpassword = $1", []int{0}},

		// MySQL and MariaDB.
		{"identified by", MySQL, "CREATE USER 'u'@'%' IDENTIFIED BY 'p4ss'", "CREATE USER 'u'@'%' IDENTIFIED BY '[redacted]'", nil},
		{"identified double quotes", MySQL, `CREATE USER u IDENTIFIED BY "a\"b'c"`, `CREATE USER u IDENTIFIED BY '[redacted]'`, nil},
		{"identified with plugin by", MySQL, "ALTER USER u IDENTIFIED WITH mysql_native_password BY 'p'",
			"ALTER USER u IDENTIFIED WITH mysql_native_password BY '[redacted]'", nil},
		{"identified with quoted plugin as", MySQL, "CREATE USER u IDENTIFIED WITH 'caching_sha2_password' AS '$A$005$hash'",
			"CREATE USER u IDENTIFIED WITH 'caching_sha2_password' AS '[redacted]'", nil},
		{"identified via using password()", MySQL, "CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('p') OR unix_socket",
			"CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('[redacted]') OR unix_socket", nil},
		{"identified by password hash", MySQL, "GRANT ALL ON db.* TO 'u'@'h' IDENTIFIED BY PASSWORD '*ABC'",
			"GRANT ALL ON db.* TO 'u'@'h' IDENTIFIED BY PASSWORD '[redacted]'", nil},
		{"grant identified", MySQL, "GRANT SELECT ON *.* TO u IDENTIFIED BY 'p' WITH GRANT OPTION",
			"GRANT SELECT ON *.* TO u IDENTIFIED BY '[redacted]' WITH GRANT OPTION", nil},
		{"two users", MySQL, "CREATE USER a IDENTIFIED BY 'x', b IDENTIFIED BY 'y' COMMENT 'hi'",
			"CREATE USER a IDENTIFIED BY '[redacted]', b IDENTIFIED BY '[redacted]' COMMENT 'hi'", nil},
		{"replace current", MySQL, "ALTER USER u IDENTIFIED BY 'new' REPLACE 'old' RETAIN CURRENT PASSWORD",
			"ALTER USER u IDENTIFIED BY '[redacted]' REPLACE '[redacted]' RETAIN CURRENT PASSWORD", nil},
		{"adjacent literals", MySQL, "CREATE USER u IDENTIFIED BY 'ab' \"cd\"", "CREATE USER u IDENTIFIED BY '[redacted]' '[redacted]'", nil},
		{"introducer", MySQL, "CREATE USER u IDENTIFIED BY _utf8mb4'p' ", "CREATE USER u IDENTIFIED BY _utf8mb4'[redacted]' ", nil},
		{"hex literal", MySQL, "SET PASSWORD = PASSWORD(X'7365')", "SET PASSWORD = PASSWORD('[redacted]')", nil},
		{"random password", MySQL, "CREATE USER u IDENTIFIED BY RANDOM PASSWORD", "CREATE USER u IDENTIFIED BY RANDOM PASSWORD", nil},
		{"set password", MySQL, "SET PASSWORD = 'p'", "SET PASSWORD = '[redacted]'", nil},
		{"set password for", MySQL, "SET PASSWORD FOR 'u'@'localhost' = PASSWORD('p')",
			"SET PASSWORD FOR 'u'@'localhost' = PASSWORD('[redacted]')", nil},
		{"set password for replace", MySQL, "SET PASSWORD FOR `u`@`h` = 'n' REPLACE 'o'", "SET PASSWORD FOR `u`@`h` = '[redacted]' REPLACE '[redacted]'", nil},
		{"old_password concat", MySQL, "SET PASSWORD = OLD_PASSWORD(CONCAT('a', 'b'))",
			"SET PASSWORD = OLD_PASSWORD(CONCAT('[redacted]', '[redacted]'))", nil},
		{"set password function", MySQL, "SET PASSWORD = CONCAT('a', 'b')", "SET PASSWORD = CONCAT('[redacted]', '[redacted]')", nil},
		{"change master", MySQL, "CHANGE MASTER TO MASTER_HOST='h', MASTER_USER='r', MASTER_PASSWORD='p', MASTER_PORT=3306",
			"CHANGE MASTER TO MASTER_HOST='h', MASTER_USER='r', MASTER_PASSWORD='[redacted]', MASTER_PORT=3306", nil},
		{"replication source", MySQL, "CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = \"p\"", "CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = '[redacted]'", nil},
		{"start replica", MySQL, "START REPLICA USER='r' PASSWORD='p'", "START REPLICA USER='r' PASSWORD='[redacted]'", nil},
		{"hash comment", MySQL, "SELECT 1 # IDENTIFIED BY 'x'\n", "SELECT 1 # IDENTIFIED BY 'x'\n", nil},
		{"executable comment", MySQL, "/*!50706 ALTER USER u IDENTIFIED BY 'p' */", "/*!50706 ALTER USER u IDENTIFIED BY '[redacted]' */", nil},
		{"backslash read either way", MySQL, `SET PASSWORD = 'a\' tail`, `SET PASSWORD = '[redacted]'`, nil},
		{"placeholders", MySQL, "ALTER USER ? IDENTIFIED BY ? COMMENT ?", "ALTER USER ? IDENTIFIED BY ? COMMENT ?", []int{1}},
		{"server options", MySQL, "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'r', PASSWORD 'p', HOST 'h')",
			"CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'r', PASSWORD '[redacted]', HOST 'h')", nil},
		{"connect url", MySQL, "CREATE TABLE t ENGINE=CONNECT CONNECTION='mysql://r:p@h/db/t'",
			"CREATE TABLE t ENGINE=CONNECT CONNECTION='mysql://r:[redacted]@h/db/t'", nil},
		{"mysql column", MySQL, "SELECT User, authentication_string FROM mysql.user WHERE password_expired = 'N'",
			"SELECT User, authentication_string FROM mysql.user WHERE password_expired = 'N'", nil},
		{"mysql no keyword", MySQL, "INSERT INTO t VALUES (?, 'x')", "INSERT INTO t VALUES (?, 'x')", nil},
		{"password policy", MySQL, "ALTER USER u PASSWORD EXPIRE INTERVAL 90 DAY", "ALTER USER u PASSWORD EXPIRE INTERVAL 90 DAY", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Redact(tc.d, tc.sql)
			if got.SQL != tc.want {
				t.Errorf("got %q, want %q", got.SQL, tc.want)
			}
			if wantRedacted := tc.want != tc.sql; got.Redacted != wantRedacted {
				t.Errorf("got Redacted %v, want %v", got.Redacted, wantRedacted)
			}
			if !slices.Equal(got.Params, tc.params) {
				t.Errorf("got Params %v, want %v", got.Params, tc.params)
			}
		})
	}
}

func TestParam(t *testing.T) {
	for _, tc := range []struct {
		name, v, want string
	}{
		{"conninfo", "host=db password=s3cret user=u", "host=db password=[redacted] user=u"},
		{"url", "postgres://u:s3cret@db/app?sslmode=require", "postgres://u:[redacted]@db/app?sslmode=require"},
		{"statement", "ALTER ROLE a PASSWORD 's3cret'", "ALTER ROLE a PASSWORD '[redacted]'"},
		{"prose", "forgot my password", "forgot my password"},
		{"plain", "42", "42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := Param(PostgreSQL, tc.v)
			if got != tc.want || changed != (tc.want != tc.v) {
				t.Errorf("got %q (changed %v), want %q", got, changed, tc.want)
			}
		})
	}
}

func TestValues(t *testing.T) {
	values := []any{"alice", "hunter2", nil, int64(7), "host=db password=pw", map[string]string{"base64": "AAE="}}
	secrets, changed := Values(MySQL, values, []int{1, 2, 5, 9})
	want := []any{"alice", Marker, nil, int64(7), "host=db password=" + Marker, Marker}
	if fmt.Sprint(values) != fmt.Sprint(want) || !changed {
		t.Errorf("got %v (changed %v), want %v", values, changed, want)
	}
	if !slices.Equal(secrets, []string{"hunter2"}) {
		t.Errorf("got secrets %q, want [hunter2]", secrets)
	}
	if _, changed := Values(MySQL, []any{"a", int64(1)}, nil); changed {
		t.Error("got changed for values without passwords")
	}
}

func TestScrub(t *testing.T) {
	r := Redact(MySQL, "CREATE USERR u IDENTIFIED BY 'hunter2'")
	msg := "You have an error in your SQL syntax; check the manual near 'USERR u IDENTIFIED BY 'hunter2'' at line 1"
	want := "You have an error in your SQL syntax; check the manual near 'USERR u IDENTIFIED BY '[redacted]'' at line 1"
	if got := Scrub(msg, r.Secrets); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := Scrub("syntax error at or near \"ab\"", []string{"ab"}); got != scrubbed {
		t.Errorf("a message with a short secret: got %q, want %q", got, scrubbed)
	}
	if got := Scrub("role \"x\" does not exist", []string{"hunter2"}); got != "role \"x\" does not exist" {
		t.Errorf("a message without the secret changed: %q", got)
	}
}

// TestFastPath holds the common case to its promise: text without the
// keywords comes back as it went in, without a copy.
func TestFastPath(t *testing.T) {
	sql := strings.Repeat("SELECT id, amount FROM orders WHERE customer = 'x' AND note LIKE '%pass%';", 10)
	got := Redact(PostgreSQL, sql)
	if got.SQL != sql || got.Redacted || len(got.Secrets) != 0 {
		t.Fatalf("got %+v, want the statement unchanged", got)
	}
	if n := testing.AllocsPerRun(100, func() { Redact(MySQL, sql) }); n != 0 {
		t.Errorf("got %v allocations per statement without a keyword, want 0", n)
	}
}

// TestNested holds statements quoted in statements to their shape: a
// password redacted at one depth is not taken for another at the next.
func TestNested(t *testing.T) {
	sql := "DO $$BEGIN PERFORM dblink_connect('host=h password=pw1'); EXECUTE 'CREATE ROLE r PASSWORD ''pw2'''; END$$"
	want := "DO $$BEGIN PERFORM dblink_connect('host=h password=[redacted]'); EXECUTE 'CREATE ROLE r PASSWORD ''[redacted]'''; END$$"
	if got := Redact(PostgreSQL, sql).SQL; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
