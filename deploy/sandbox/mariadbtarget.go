package sandbox

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// Names in a MariaDB target made by NewTarget with zero options.
const (
	// DefaultMariaDBTargetDatabase is the target database.
	DefaultMariaDBTargetDatabase = "billing"
	// DefaultMariaDBTargetRole is the role identities are entitled to: it
	// may read billing.orders and write billing.imports, nothing else.
	DefaultMariaDBTargetRole = "analyst"
	// DefaultMariaDBTargetAdmin is sallyport's admin login on the target.
	DefaultMariaDBTargetAdmin = "sallyport_admin"
	// MariaDBTargetSampleOrders is how many rows billing.orders holds.
	MariaDBTargetSampleOrders = 1000
)

// MariaDBTargetOptions names what NewTarget creates; zero fields take the
// DefaultMariaDB* names.
type MariaDBTargetOptions struct {
	Database string
	Role     string
	Admin    string
}

// MariaDBTarget is a database prepared for sallyport to broker: sample
// data, an entitled role, an unrelated table the role may not read, and an
// admin login that may create, lock, kill and drop users and hand out the
// role — no SUPER, no access to the data.
type MariaDBTarget struct {
	*MariaDB
	// Database is the target database.
	Database string
	// Role is the entitled role.
	Role string
	// Admin and AdminPassword are sallyport's admin login.
	Admin         string
	AdminPassword string
}

// NewTarget creates database, entitled role, sample data and admin login.
func (m *MariaDB) NewTarget(ctx context.Context, opts MariaDBTargetOptions) (*MariaDBTarget, error) {
	t := &MariaDBTarget{MariaDB: m, Database: orName(opts.Database, DefaultMariaDBTargetDatabase),
		Role: orName(opts.Role, DefaultMariaDBTargetRole), Admin: orName(opts.Admin, DefaultMariaDBTargetAdmin),
		AdminPassword: randomSecret()}
	if err := m.CreateDatabase(ctx, t.Database); err != nil {
		return nil, fmt.Errorf("mariadb target: %w", err)
	}
	if err := m.Exec(ctx, t.Database, t.setupSQL()); err != nil {
		return nil, fmt.Errorf("mariadb target: %w", err)
	}
	return t, nil
}

// setupSQL is the target's schema, role, admin login and grants. The admin
// gets CREATE USER (create, lock, drop), PROCESS and CONNECTION ADMIN (see
// and kill session threads), read access to mysql.user (the janitor lists
// leftovers) and the role WITH ADMIN OPTION (grant it).
func (t *MariaDBTarget) setupSQL() string {
	db, role, admin := quoteMySQLIdent(t.Database), quoteMySQLIdent(t.Role), mysqlAccount(t.Admin)
	return fmt.Sprintf(`
CREATE ROLE %[2]s;
CREATE USER %[3]s IDENTIFIED BY %[4]s;
GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO %[3]s;
GRANT SELECT ON mysql.user TO %[3]s;
GRANT %[2]s TO %[3]s WITH ADMIN OPTION;
CREATE TABLE %[1]s.orders (id INT PRIMARY KEY, customer VARCHAR(64) NOT NULL, amount DECIMAL(10,2) NOT NULL);
INSERT INTO %[1]s.orders SELECT seq, CONCAT('customer-', seq %% 97), (seq * 7 %% 1000) / 10.0 FROM seq_1_to_%[5]d;
CREATE TABLE %[1]s.imports (id INT, note TEXT, amount DOUBLE, at DATETIME(6), raw LONGBLOB);
CREATE TABLE %[1]s.payroll (name VARCHAR(64), salary DECIMAL(12,2));
INSERT INTO %[1]s.payroll VALUES ('ceo', 1000000);
GRANT SELECT ON %[1]s.orders TO %[2]s;
GRANT SELECT, INSERT, DELETE ON %[1]s.imports TO %[2]s;`,
		db, role, admin, mysqlLiteral(t.AdminPassword), MariaDBTargetSampleOrders)
}

// AdminDSN is a go-sql-driver/mysql DSN for the admin login over TCP, with
// no default database.
func (t *MariaDBTarget) AdminDSN() string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = t.Admin, t.AdminPassword
	cfg.Net, cfg.Addr = "tcp", t.Addr()
	return cfg.FormatDSN()
}

// MariaDBTargetT starts a MariaDB sandbox with a target for the test,
// applying Need's policy when it cannot start.
func MariaDBTargetT(t testing.TB, opts ...MariaDBTargetOptions) *MariaDBTarget {
	t.Helper()
	m := MariaDBT(t)
	target, err := m.NewTarget(context.Background(), first(opts))
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	return target
}

// mysqlAccount is 'user'@'%'.
func mysqlAccount(user string) string { return mysqlLiteral(user) + "@'%'" }

// mysqlLiteral quotes a string constant (backslashes are escapes in MariaDB).
func mysqlLiteral(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}
