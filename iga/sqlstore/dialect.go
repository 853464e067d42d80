package sqlstore

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers database/sql driver "pgx"
	"modernc.org/sqlite"
)

// sqliteBusyTimeout is how long a SQLite statement waits for another
// process's write transaction (an `iga apply` of thousands of identities,
// say) before giving up with SQLITE_BUSY, which Update then retries.
const sqliteBusyTimeout = 10 * time.Second

// sqliteMmapSize is how much of the registry file SQLite reads through a
// memory map instead of read(2): a lookup is then B-tree walking without
// system calls. The default page cache stays small on purpose: SQLite
// drops a connection's whole cache whenever another connection wrote, and
// the drop costs more the larger the cache.
const sqliteMmapSize = 256 << 20

// Connections per process. SQLite readers run in parallel under WAL and
// writers queue anyway, so a few more than the cores serve admission. For
// PostgreSQL the cap keeps N replicas within the server's default
// max_connections of 100 (5 replicas × 16 plus admin sessions).
const (
	sqliteMaxConns   = 8
	postgresMaxConns = 16
)

// SQLite result codes that mean "someone else holds the lock; try again".
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)

// PostgreSQL error codes after which the whole transaction may be retried.
const (
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
)

// dialect holds what differs between the drivers; the SQL itself is shared
// and written with ? placeholders.
type dialect struct {
	name string
	// driverName is the database/sql driver.
	driverName string
	// lockMigrations, when set, runs first in the migration transaction to
	// keep concurrent Opens from migrating at once. SQLite needs none: its
	// transactions begin IMMEDIATE, which already takes the write lock.
	lockMigrations string
	// serialWrites says writes from this process should queue in the Store
	// rather than in the database's busy handler, which sleeps.
	serialWrites bool
	// walCheckpoints says the store checkpoints the write-ahead log itself,
	// in the background (see checkpoint.go).
	walCheckpoints bool
	// dollarParams rewrites ? placeholders as $1, $2, ….
	dollarParams bool
	// maxConns caps the connections one process keeps open, all of them
	// kept idle for reuse: a new connection re-prepares every statement.
	maxConns int
	// retryable reports whether err means the transaction may be retried.
	retryable func(error) bool
}

var sqliteDialect = &dialect{
	name:           "sqlite",
	driverName:     "sqlite",
	serialWrites:   true,
	walCheckpoints: true,
	maxConns:       sqliteMaxConns,
	retryable:      sqliteRetryable,
}

var postgresDialect = &dialect{
	name:           "postgres",
	driverName:     "pgx",
	lockMigrations: "SELECT pg_advisory_xact_lock(7405332)", // any fixed key: "sallyport migrations"
	dollarParams:   true,
	maxConns:       postgresMaxConns,
	retryable:      postgresRetryable,
}

// sqliteDSN is the modernc.org/sqlite data source for the registry file:
// WAL so readers never block the writer, NORMAL sync (durable at WAL
// checkpoints, safe from corruption), foreign keys on, and every
// transaction BEGIN IMMEDIATE so a writer takes the lock up front instead
// of failing half-way with SQLITE_BUSY.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(sqliteBusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "wal_autocheckpoint(0)") // see checkpoint.go
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "mmap_size("+strconv.FormatInt(sqliteMmapSize, 10)+")")
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode()
}

// rebind rewrites the ? placeholders of query for the dialect. Queries
// never contain ? inside string literals.
func (d *dialect) rebind(query string) string {
	if !d.dollarParams {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func sqliteRetryable(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	code := e.Code() & 0xff // extended codes keep the primary code in the low byte
	return code == sqliteBusy || code == sqliteLocked
}

func postgresRetryable(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && (e.Code == pgSerializationFailure || e.Code == pgDeadlockDetected)
}

// dialectFor returns the dialect of a validated driver name.
func dialectFor(driver string) (*dialect, error) {
	switch driver {
	case "", DriverSQLite:
		return sqliteDialect, nil
	case DriverPostgres:
		return postgresDialect, nil
	}
	return nil, fmt.Errorf("unknown registry driver %q (want %q or %q)", driver, DriverSQLite, DriverPostgres)
}
