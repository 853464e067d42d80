// Package mysql issues per-session MariaDB and MySQL users (DESIGN §6): for
// each admitted session the bastion creates a user 'sp_<session-id>'@'<host>'
// — host being the bastion as the target sees it — with a random password it
// keeps in memory only, grants it the entitled role, logs in as it, and at
// the end locks the account, kills its threads and drops it. MySQL has no
// VALID UNTIL: the bastion enforces the lifetime, and the janitor removes
// users left behind by a crash. proxy/mysql uses it through its own small
// interface; cmd wires one Issuer per mysql target.
package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// UserPrefix starts the name of every per-session user; it is reserved for
// them. sallyport's own helper accounts are named sallyport_*.
const UserPrefix = "sp_"

// maxUserName is MySQL's user name limit (MariaDB allows 80): a longer
// name would be refused, or truncated by old servers.
const maxUserName = 32

// MySQL error numbers the issuer branches on.
const (
	errUnknownThread = 1094 // ER_NO_SUCH_THREAD: the thread ended meanwhile
)

// DB is what the Issuer needs of the admin connection to a target; a
// *sql.DB opened with go-sql-driver/mysql has it. The admin login needs
// CREATE USER, PROCESS, CONNECTION ADMIN (or SUPER on MySQL), SELECT on
// mysql.user, and each entitled role WITH ADMIN OPTION.
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Issuer creates and drops the per-session users of one target.
type Issuer struct {
	// DB is the admin connection to the target. Required.
	DB DB
	// Host is the host part of per-session accounts: the bastion's address
	// as the target sees it. Empty: the host the admin connection comes
	// from, asked of the server once.
	Host string
	// Now returns the current time. Nil: time.Now.
	Now func() time.Time
	// JanitorGrace is how old a session must be before the janitor may drop
	// a user it does not know: a user another replica created moments ago
	// is about to log in. Zero: one minute.
	JanitorGrace time.Duration

	mu   sync.Mutex
	host string // Host, or the one learnt from the server
}

// User is a per-session account. Password lives only in memory.
type User struct {
	Name     string
	Host     string
	Password string
}

// Account is 'name'@'host', quoted for SQL.
func (u *User) Account() string { return account(u.Name, u.Host) }

// UserName is the user of session id: sp_<id>.
func UserName(sessionID string) string { return UserPrefix + sessionID }

// Create makes the account of session sessionID and grants it role. The
// session must SET ROLE after logging in: SET DEFAULT ROLE for another user
// needs write access to the mysql schema, which the admin does not get.
func (i *Issuer) Create(ctx context.Context, sessionID, role string) (*User, error) {
	u := &User{Name: UserName(sessionID), Password: newPassword()}
	if err := checkName(u.Name, maxUserName); err != nil {
		return nil, fmt.Errorf("create user for session %s: %w", sessionID, err)
	}
	if err := checkName(role, 128); err != nil {
		return nil, fmt.Errorf("create user for session %s: entitled role: %w", sessionID, err)
	}
	host, err := i.bastionHost(ctx)
	if err != nil {
		return nil, fmt.Errorf("create user for session %s: %w", sessionID, err)
	}
	u.Host = host
	create := fmt.Sprintf("CREATE USER %s IDENTIFIED BY %s WITH MAX_USER_CONNECTIONS 1", u.Account(), literal(u.Password))
	if _, err := i.DB.ExecContext(ctx, create); err != nil {
		return nil, fmt.Errorf("create user %s for session %s: %w", u.Name, sessionID, err)
	}
	if _, err := i.DB.ExecContext(ctx, fmt.Sprintf("GRANT %s TO %s", ident(role), u.Account())); err != nil {
		err = fmt.Errorf("grant role %s to user %s: %w", role, u.Name, err)
		if dropErr := i.Drop(ctx, u); dropErr != nil {
			return nil, errors.Join(err, dropErr)
		}
		return nil, err
	}
	return u, nil
}

// Drop locks the account (no new logins), kills its threads and drops it.
// An account that is already gone is not an error.
func (i *Issuer) Drop(ctx context.Context, u *User) error {
	if !strings.HasPrefix(u.Name, UserPrefix) {
		return fmt.Errorf("drop user %s: not a per-session user", u.Name)
	}
	_, lockErr := i.DB.ExecContext(ctx, "ALTER USER IF EXISTS "+u.Account()+" ACCOUNT LOCK")
	if err := i.killThreads(ctx, u.Name); err != nil {
		return fmt.Errorf("drop user %s: %w", u.Name, err)
	}
	if _, err := i.DB.ExecContext(ctx, "DROP USER IF EXISTS "+u.Account()); err != nil {
		return errors.Join(fmt.Errorf("drop user %s: %w", u.Name, err), lockErr)
	}
	return nil
}

// KillQuery ends the statement running on the target thread threadID
// (a client's Ctrl-C, which sallyport maps from its own connection id).
func (i *Issuer) KillQuery(ctx context.Context, threadID uint64) error {
	_, err := i.DB.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", threadID))
	if err != nil && !isMySQLError(err, errUnknownThread) {
		return fmt.Errorf("kill query on thread %d: %w", threadID, err)
	}
	return nil
}

// killThreads kills every connection of user name.
func (i *Issuer) killThreads(ctx context.Context, name string) error {
	ids, err := i.threads(ctx, name)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := i.DB.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil && !isMySQLError(err, errUnknownThread) {
			return fmt.Errorf("kill thread %d of %s: %w", id, name, err)
		}
	}
	return nil
}

// threads lists the ids of the connections logged in as user name.
func (i *Issuer) threads(ctx context.Context, name string) ([]uint64, error) {
	rows, err := i.DB.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?", name)
	if err != nil {
		return nil, fmt.Errorf("list threads of %s: %w", name, err)
	}
	defer rows.Close()
	var ids []uint64
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list threads of %s: %w", name, err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// bastionHost is the host part of per-session accounts.
func (i *Issuer) bastionHost(ctx context.Context) (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.host == "" {
		i.host = i.Host
	}
	if i.host != "" {
		return i.host, nil
	}
	rows, err := i.DB.QueryContext(ctx, "SELECT SUBSTRING_INDEX(USER(), '@', -1)")
	if err != nil {
		return "", fmt.Errorf("ask the target for the bastion's host: %w", err)
	}
	defer rows.Close()
	var host string
	if rows.Next() {
		err = rows.Scan(&host)
	}
	if err = errors.Join(err, rows.Err()); err != nil || host == "" {
		return "", fmt.Errorf("ask the target for the bastion's host: got %q: %w", host, err)
	}
	i.host = host
	return host, nil
}

// checkName refuses names the server would refuse, truncate or misquote.
func checkName(name string, max int) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > max:
		return fmt.Errorf("name %q is longer than %d bytes", name, max)
	case strings.ContainsAny(name, "\x00'\\"):
		return fmt.Errorf("name %q contains a NUL, quote or backslash", name)
	}
	return nil
}

// newPassword returns 32 random bytes as hex: no quoting concerns.
func newPassword() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("read random password: %v", err)) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

func account(name, host string) string { return literal(name) + "@" + literal(host) }

// ident quotes an identifier with backticks.
func ident(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// literal quotes a string constant; backslashes are escapes in MySQL.
func literal(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}

func isMySQLError(err error, number uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == number
}

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}
