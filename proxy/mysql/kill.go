package mysql

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/sallyport/sallyport/recorder"
)

// killQueryTimeout bounds the admin's KILL QUERY on the target.
const killQueryTimeout = 5 * time.Second

// killStmt matches the KILL statements clients send to cancel: the mysql
// client's Ctrl-C sends "KILL QUERY <connection id>" on a new connection.
var killStmt = regexp.MustCompile(`(?i)^\s*KILL\s+(QUERY\s+|CONNECTION\s+)?(\d{1,10})\s*;?\s*$`)

// kill is a KILL a client sent.
type kill struct {
	id    uint32
	query bool // KILL QUERY: end the statement, not the connection
	sql   string
}

// parseKill recognises KILL [QUERY|CONNECTION] n and COM_PROCESS_KILL.
func parseKill(p []byte) (kill, bool) {
	switch {
	case p[0] == comProcessKill && len(p) >= 5:
		id := le32(p[1:])
		return kill{id: id, sql: fmt.Sprintf("KILL %d", id)}, true
	case p[0] != comQuery || len(p) > 64 || !mentionsKill(p[1:]):
		return kill{}, false
	}
	m := killStmt.FindSubmatch(p[1:])
	if m == nil {
		return kill{}, false
	}
	id, err := strconv.ParseUint(string(m[2]), 10, 32)
	if err != nil {
		return kill{}, false
	}
	return kill{id: uint32(id), query: len(m[1]) > 0 && (m[1][0] == 'Q' || m[1][0] == 'q'), sql: string(p[1:])}, true
}

// mentionsKill is a cheap test before the regexp: most short queries are
// not KILLs.
func mentionsKill(q []byte) bool {
	i := 0
	for i < len(q) && (q[i] == ' ' || q[i] == '\t' || q[i] == '\r' || q[i] == '\n') {
		i++
	}
	return len(q)-i >= 4 && bytes.EqualFold(q[i:i+4], []byte("KILL"))
}

// kill carries out a KILL of another bastion connection: allowed only for
// the same identity on the same target, mapped to the target's thread id
// (KILL QUERY, done by the admin login) or to ending that session.
func (ss *session) kill(ctx context.Context, k kill, other *session) []byte {
	if other.adm.req.Identity != ss.adm.req.Identity || other.adm.target != ss.adm.target {
		msg := fmt.Sprintf("sallyport: connection %d is not a session of %s on %s", k.id, ss.adm.req.Identity, ss.adm.req.Target)
		ss.audit.local(k.sql, &recorder.Outcome{ErrorCode: strconv.Itoa(codeNotOwner), Error: msg})
		return errPacket(codeNotOwner, stateGeneral, msg)
	}
	var err error
	if k.query {
		from := ss.cancelFrom()
		other.audit.cancelled(from, k.sql) // before the killed statement's own event, which the kill ends
		if err = ss.killQuery(ctx, other); err != nil {
			other.audit.note("the KILL QUERY from " + from + " failed: " + err.Error())
		}
	} else {
		ss.srv.liveTable().Kill(other.ps.ID, "KILL from session "+ss.ps.ID)
	}
	if err != nil {
		msg := "sallyport: " + err.Error()
		ss.audit.local(k.sql, &recorder.Outcome{ErrorCode: strconv.Itoa(codeUnknownError), Error: msg})
		return errPacket(codeUnknownError, stateGeneral, msg)
	}
	zero := int64(0)
	ss.audit.local(k.sql, &recorder.Outcome{Tag: tagOK, Rows: &zero})
	return okPacket(statusAutocommit)
}

func (ss *session) killQuery(ctx context.Context, other *session) error {
	killer, ok := other.adm.target.Users.(QueryKiller)
	if !ok {
		return fmt.Errorf("KILL QUERY is not supported for target %s", other.adm.req.Target)
	}
	ctx, cancel := context.WithTimeout(ctx, killQueryTimeout)
	defer cancel()
	return killer.KillQuery(ctx, other.up.thread)
}

// cancelFrom names, in the cancelled session's recording, where a KILL
// QUERY came from: this session and its client's address.
func (ss *session) cancelFrom() string {
	return "session " + ss.ps.ID + " (" + ss.client.conn.RemoteAddr().String() + ")"
}

// cancelled records in this session a KILL QUERY (sql as sent) that
// another session is sending at its running statement.
func (a *audit) cancelled(from, sql string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ev := recorder.Event{Type: recorder.EventCancel, Time: a.now(), From: from, SQL: sql}
	if a.waiting() > 0 && a.queue[a.head].record {
		ev.Text = "cancels the statement running since " + a.queue[a.head].start.UTC().Format(time.RFC3339Nano)
	} else {
		ev.Text = "no statement was running"
	}
	a.done = append(a.done, ev)
}

// note records a note event.
func (a *audit) note(text string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done = append(a.done, recorder.Event{Type: recorder.EventNote, Time: a.now(), Text: text})
}
