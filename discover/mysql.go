package discover

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	camysql "github.com/sallyport/sallyport/ca/mysql"
	"github.com/sallyport/sallyport/iga"
)

// MySQLQuerier is what MySQL needs of the admin connection; a *sql.DB has
// it.
type MySQLQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// MySQL discovers the accounts of a MySQL or MariaDB server through the
// target's admin connection, leaving out sallyport's per-session users
// (sp_*), the admin account itself, roles and locked accounts (which
// cannot log in). mysql.user is read as a whole, as its columns differ
// between MySQL and MariaDB; grants on single databases come from mysql.db
// when the admin may read it, else a note says they are unknown.
type MySQL struct {
	// DB is the admin connection. Required.
	DB MySQLQuerier
}

// socketPlugins authenticate by the client's Unix user, without password.
var socketPlugins = []string{"unix_socket", "auth_socket"}

// Discover lists the accounts.
func (m *MySQL) Discover(ctx context.Context) (Found, error) {
	var admin string
	if err := m.queryRow(ctx, "SELECT CURRENT_USER()", &admin); err != nil {
		return Found{}, fmt.Errorf("ask the admin account: %w", err)
	}
	rows, err := m.DB.QueryContext(ctx, "SELECT * FROM mysql.user")
	users, err := scanRows(rows, err)
	if err != nil {
		return Found{}, fmt.Errorf("list accounts in mysql.user: %w", err)
	}
	var found Found
	dbGrants, err := m.dbGrants(ctx)
	if err != nil {
		found.Notes = append(found.Notes, "mysql.db is not readable by the admin login (grant it SELECT on mysql.db): grants on single databases are unknown")
	}
	locked := m.mariadbLocked(ctx, users, &found)
	for _, u := range users {
		if locked[u["user"]+"@"+u["host"]] {
			u["account_locked"] = "Y"
		}
		if a, ok := mysqlAccount(u, admin, dbGrants); ok {
			found.Accounts = append(found.Accounts, a)
		}
	}
	return found, nil
}

func (m *MySQL) queryRow(ctx context.Context, query string, dest ...any) error {
	rows, err := m.DB.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		return fmt.Errorf("no row: %w", rows.Err())
	}
	return rows.Scan(dest...)
}

// mariadbLocked returns the locked accounts of a MariaDB server, whose
// mysql.user view has no account_locked column (MySQL's has): they are in
// mysql.global_priv, which the admin may not read — then a note says
// locked accounts are listed as if they could log in.
func (m *MySQL) mariadbLocked(ctx context.Context, users []map[string]string, found *Found) map[string]bool {
	if len(users) == 0 {
		return nil
	}
	if _, mysql := users[0]["account_locked"]; mysql {
		return nil
	}
	rows, err := m.DB.QueryContext(ctx, `SELECT User, Host FROM mysql.global_priv WHERE JSON_VALUE(Priv, '$.account_locked') IN ('1', 'true')`)
	recs, err := scanRows(rows, err)
	if err != nil {
		found.Notes = append(found.Notes, "mysql.global_priv is not readable by the admin login (grant it SELECT on mysql.global_priv): locked accounts are listed as if they could log in")
		return nil
	}
	out := map[string]bool{}
	for _, r := range recs {
		out[r["user"]+"@"+r["host"]] = true
	}
	return out
}

// dbGrants maps 'user@host' to the databases it has grants on.
func (m *MySQL) dbGrants(ctx context.Context) (map[string][]string, error) {
	rows, err := m.DB.QueryContext(ctx, "SELECT * FROM mysql.db")
	recs, err := scanRows(rows, err)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, r := range recs {
		k := r["user"] + "@" + r["host"]
		out[k] = append(out[k], r["db"])
	}
	return out, nil
}

// scanRows reads every row as column (lower-cased) to text.
func scanRows(rows *sql.Rows, err error) ([]map[string]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		rec := make(map[string]string, len(cols))
		for i, c := range cols {
			rec[strings.ToLower(c)] = vals[i].String
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// mysqlAccount turns a mysql.user row into an account; ok is false for
// rows that are no standing access of anyone's.
func mysqlAccount(u map[string]string, admin string, dbGrants map[string][]string) (iga.DiscoveredAccount, bool) {
	user, host := u["user"], u["host"]
	name := user + "@" + host
	if strings.HasPrefix(user, camysql.UserPrefix) || name == admin || u["is_role"] == "Y" || u["account_locked"] == "Y" {
		return iga.DiscoveredAccount{}, false
	}
	a := iga.DiscoveredAccount{Account: name, Login: user, Password: mysqlPassword(u)}
	if p := u["plugin"]; p != "" {
		a.Attributes = append(a.Attributes, "plugin "+p)
	}
	if host == "%" {
		a.Attributes = append(a.Attributes, "from any host")
	}
	if user == "" {
		a.Attributes = append(a.Attributes, "anonymous")
	}
	a.Attributes = append(a.Attributes, "privileges "+privilegeSummary(u, dbGrants[name]))
	return a, true
}

// mysqlPassword says whether the account has a password: MariaDB writes
// "invalid" for an account that may only use another plugin.
func mysqlPassword(u map[string]string) string {
	for _, col := range []string{"authentication_string", "password"} {
		if v := u[col]; v != "" && v != "invalid" && !slices.Contains(socketPlugins, u["plugin"]) {
			return iga.PasswordSet
		}
	}
	return iga.PasswordNone
}

// privilegeSummary is "ALL", "USAGE" or the global privileges held, then
// the databases with grants of their own.
func privilegeSummary(u map[string]string, dbs []string) string {
	var held []string
	total := 0
	for col, v := range u {
		name, ok := strings.CutSuffix(col, "_priv")
		if !ok {
			continue
		}
		total++
		if v == "Y" {
			held = append(held, strings.ToUpper(strings.ReplaceAll(name, "_", " ")))
		}
	}
	slices.Sort(held)
	s := "USAGE"
	switch {
	case total > 0 && len(held) == total:
		s = "ALL on *.*"
	case len(held) > 0:
		s = strings.Join(held, ", ") + " on *.*"
	}
	if len(dbs) > 0 {
		slices.Sort(dbs)
		s += "; grants on " + strings.Join(dbs, ", ")
	}
	return s
}
