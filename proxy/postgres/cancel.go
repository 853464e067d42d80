package postgres

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// cancelDialTimeout bounds forwarding a cancel request to the target: the
// user pressed Ctrl-C and is waiting.
const cancelDialTimeout = 5 * time.Second

// Secret lengths of the BackendKeyData sallyport mints: protocol 3.0 has a
// 4-byte key; 3.2 allows up to 256 bytes, and PostgreSQL 18 uses 32.
const (
	secretLen30 = 4
	secretLen32 = 32
)

// cancelKeys maps the BackendKeyData sallyport gave its clients to the
// upstream backends' keys, so a client's CancelRequest never learns or
// needs the target's key.
type cancelKeys struct {
	mu sync.Mutex
	m  map[uint32]*cancelKey
}

type cancelKey struct {
	secret   []byte
	addr     string      // the upstream backend's address
	tls      *tls.Config // as the session's login used it; nil: plaintext
	upstream pgproto3.CancelRequest
	audit    *audit // records the cancels in the session's recording
}

// add mints a key for a client of the session logged in as up, whose
// cancels a records, and returns it.
func (k *cancelKeys) add(secretLen int, up *upstream, a *audit) *pgproto3.BackendKeyData {
	key := &cancelKey{secret: make([]byte, secretLen), addr: up.conn.RemoteAddr().String(), tls: up.tls,
		upstream: pgproto3.CancelRequest{ProcessID: up.pid, SecretKey: up.secret}, audit: a}
	rand.Read(key.secret)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[uint32]*cancelKey{}
	}
	var b [4]byte
	for {
		rand.Read(b[:])
		id := binary.BigEndian.Uint32(b[:]) &^ (1 << 31) // positive, as libpq prints it
		if _, taken := k.m[id]; !taken && id != 0 {
			k.m[id] = key
			return &pgproto3.BackendKeyData{ProcessID: id, SecretKey: key.secret}
		}
	}
}

func (k *cancelKeys) remove(id uint32) {
	k.mu.Lock()
	delete(k.m, id)
	k.mu.Unlock()
}

func (k *cancelKeys) lookup(req *pgproto3.CancelRequest) *cancelKey {
	k.mu.Lock()
	key := k.m[req.ProcessID]
	k.mu.Unlock()
	if key == nil || subtle.ConstantTimeCompare(key.secret, req.SecretKey) != 1 {
		return nil
	}
	return key
}

// forwardCancel sends the upstream CancelRequest matching req, if any, and
// records it in the session it cancels as coming from the address from.
// Like PostgreSQL, it answers nothing either way. When the session's login
// used TLS, so does the cancel (as libpq 17 and pgx do): the key is not
// shown to the network.
func (s *Server) forwardCancel(ctx context.Context, req *pgproto3.CancelRequest, from string) {
	key := s.keys.lookup(req)
	if key == nil {
		s.logger().Info("postgres cancel request with an unknown key ignored", "source", from)
		return
	}
	if key.audit != nil {
		key.audit.cancelled(from)
	}
	ctx, cancel := context.WithTimeout(ctx, cancelDialTimeout)
	defer cancel()
	if err := s.sendCancel(ctx, key); err != nil {
		s.logger().Warn("forward postgres cancel request", "target", key.addr, "err", err)
	}
}

func (s *Server) sendCancel(ctx context.Context, key *cancelKey) error {
	conn, err := s.dial(ctx, "tcp", key.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if key.tls != nil {
		tc, err := requestTLS(conn, key.tls)
		if err != nil {
			return err
		}
		if tc == nil {
			return errors.New("the target declined TLS for the cancel request")
		}
		conn = tc
	}
	buf, _ := key.upstream.Encode(nil) // the upstream key came from the server: at most 256 bytes
	_, err = conn.Write(buf)
	return err
}
