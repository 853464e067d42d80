package proxy

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Pump relays pairs of plain TCP connections on a few goroutines that
// each wait on their own epoll set, the way PgBouncer does: a query and its
// answer cost one wakeup of such a goroutine each way and one read and one
// write, instead of waking a goroutine per direction through Go's
// scheduler, which on a small machine costs more than the relaying. What
// it relays goes through a Flow per direction on the pump's goroutine, so
// a Flow never blocks.
//
// There is a loop per GOMAXPROCS (at most maxLoops): a single one would get
// one thread's share of a busy machine's CPU. A link goes to the first loop
// with fewer than spreadAt links, else to the one with the fewest. The
// zero Pump is ready; a loop's goroutine starts with
// its first link and ends when none has been live for pumpIdleExit.
type Pump struct {
	// Loops is how many goroutines relay. Zero: GOMAXPROCS, at most maxLoops.
	Loops int

	once  sync.Once
	loops []*loop
}

// maxLoops bounds the pump's goroutines.
const maxLoops = 8

// loop is one goroutine of a pump and its epoll set.
type loop struct {
	mu      sync.Mutex
	started bool
	running bool
	epfd    int
	wakefd  int // an eventfd: commands wait for the loop
	cmds    []func()
	woken   bool
	links   atomic.Int32

	// Loop goroutine only.
	ends  []*end // by descriptor: a lookup per event costs no hashing
	nends int    // non-nil entries of ends
	buf   []byte
}

// pick is the loop with the fewest links.
func (p *Pump) pick() *loop {
	p.once.Do(func() {
		n := p.Loops
		if n <= 0 {
			n = min(runtime.GOMAXPROCS(0), maxLoops)
		}
		p.loops = make([]*loop, n)
		for i := range p.loops {
			p.loops[i] = &loop{}
		}
	})
	for _, lp := range p.loops {
		if lp.links.Load() < spreadAt {
			return lp
		}
	}
	best := p.loops[0]
	for _, lp := range p.loops[1:] {
		if lp.links.Load() < best.links.Load() {
			best = lp
		}
	}
	return best
}

// spreadAt is how many links a loop takes before the next loop is used: a
// loop with several ready sessions serves them in one wakeup (pgbench -c 4:
// a quarter less CPU per query on one loop than on two), while many
// sessions on one loop get one thread's share of a busy machine (-c 40:
// half the throughput of two loops).
const spreadAt = 8

const (
	// pumpReadBuffer is the one read buffer of a pump: one read takes what
	// the kernel has for a connection (a burst of rows, a pipeline), and
	// Flows copy only what they keep.
	pumpReadBuffer = 64 << 10
	// pumpEvents is how many ready connections one wait returns.
	pumpEvents = 128
	// pumpIdleExit is how long a loop's goroutine outlives its last link.
	pumpIdleExit = 5 * time.Second
)

// Link is two connections relayed by a pump.
type Link struct {
	p    *loop
	ends [2]*end
	done chan struct{}
	err  error
	out  [2]net.Conn // the connections again, after the link ended

	added bool // by its loop, which counts it
	over  bool // finished; the loop's goroutine reads it without the channel's cost
}

// end is one side of a link: the bytes read from it go through flow to
// the other side.
type end struct {
	l      *Link
	side   int
	fd     int
	flow   Flow
	first  []byte // bytes buffered before the link, fed first
	out    []byte // bytes waiting to be written to this side
	paused bool   // by its flow: not read until Resume
	full   bool   // the other side's out is not drained: not read
	events uint32 // as registered
	closed bool   // read EOF: waits for the other side's out to drain

	tls *tlsEnd // nil: plain
}

// Link prepares relaying between a and b, which must be Usable with no
// read or write in progress: the link takes over their descriptors (a and
// b, or the TCP connections under their TLS, are closed). firstA and
// firstB are bytes read ahead from each side (plaintext), fed to its flow
// first. Start starts it; Wait gives the connections back.
func (pp *Pump) Link(a, b net.Conn, firstA, firstB []byte, fromA, fromB Flow) (*Link, error) {
	p := pp.pick()
	if err := p.ensureOpen(); err != nil {
		return nil, err
	}
	l := &Link{p: p, done: make(chan struct{})}
	for i, c := range []net.Conn{a, b} {
		raw, te := linkable(c)
		fd, err := takeFD(raw)
		if err != nil {
			for _, e := range l.ends[:i] {
				syscall.Close(e.fd)
			}
			return nil, err
		}
		l.ends[i] = &end{l: l, side: i, fd: fd, tls: te}
	}
	l.ends[0].flow, l.ends[0].first = fromA, firstA
	l.ends[1].flow, l.ends[1].first = fromB, firstB
	for i, c := range []net.Conn{a, b} {
		closeTaken(c, l.ends[i].tls) // the link holds duplicates: closing sends nothing
	}
	return l, nil
}

// Start begins relaying: flows run from now on, so whatever they use must
// be set before.
func (l *Link) Start() {
	l.p.do(func() { l.p.add(l) })
}

// takeFD duplicates c's descriptor, out of Go's poller once c is closed.
func takeFD(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("pump: %T has no descriptor", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("pump: %w", err)
	}
	fd := -1
	var derr error
	if err := raw.Control(func(s uintptr) {
		fd, derr = dupCloexec(int(s))
	}); err != nil {
		return -1, fmt.Errorf("pump: %w", err)
	}
	if derr != nil {
		return -1, fmt.Errorf("pump: dup: %w", derr)
	}
	return fd, nil
}

func dupCloexec(fd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// Stop ends the link; Wait returns ErrLinkStopped unless it had ended.
func (l *Link) Stop() {
	l.p.do(func() { l.p.finish(l, ErrLinkStopped) })
}

// Pause stops reading side until Resume; only a Flow calls it.
func (l *Link) Pause(side int) {
	l.ends[side].paused = true
}

// Resume undoes Pause: side's flow is called with nil, then side is read
// again. Any goroutine may call it.
func (l *Link) Resume(side int) {
	l.p.do(func() {
		e := l.ends[side]
		if !e.paused || l.ended() {
			return
		}
		e.paused = false
		l.p.feed(e, nil)
		if e.tls != nil {
			l.p.drainTLS(e, false) // what the pump read before the pause
		}
		l.p.arm(l)
	})
}

// Send writes b to side after what the link forwarded so far. Any
// goroutine may call it; b must not change afterwards.
func (l *Link) Send(side int, b []byte) {
	l.p.do(func() {
		if !l.ended() {
			l.p.send(l.ends[side], b)
			l.p.arm(l)
		}
	})
}

// Done is closed when the link ended.
func (l *Link) Done() <-chan struct{} { return l.done }

// Wait waits for the link to end and returns why, with the two
// connections (in the order given to Pump.Link) for what remains to be
// said and for closing.
func (l *Link) Wait() (a, b net.Conn, err error) {
	<-l.done
	return l.out[0], l.out[1], l.err
}

// ended reports whether l finished; only the loop's goroutine calls it.
func (l *Link) ended() bool { return l.over }

// release turns the descriptors back into connections.
func (l *Link) release() {
	for i, e := range l.ends {
		f := os.NewFile(uintptr(e.fd), "pump")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			c = deadConn{err}
		}
		l.out[i] = e.giveBack(c)
	}
}

// ensureOpen creates the epoll set and the wakeup descriptor once.
func (p *loop) ensureOpen() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return nil
	}
	if err := p.open(); err != nil {
		return err
	}
	p.started = true
	return nil
}

// do runs f on the loop's goroutine, starting it if needed; the loop is open.
func (p *loop) do(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmds = append(p.cmds, f)
	if !p.running {
		p.running = true
		go p.run()
		return
	}
	if !p.woken {
		p.woken = true
		one := [8]byte{1}
		_, _ = syscall.Write(p.wakefd, one[:]) // cannot fail but by overflow, which wakes too
	}
}

func (p *loop) open() error {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("pump: epoll: %w", err)
	}
	r, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if e != 0 {
		syscall.Close(epfd)
		return fmt.Errorf("pump: eventfd: %w", e)
	}
	wakefd := int(r)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(wakefd)}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(wakefd)
		return fmt.Errorf("pump: epoll: %w", err)
	}
	p.epfd, p.wakefd = epfd, wakefd
	p.buf = make([]byte, pumpReadBuffer)
	return nil
}

// run is the loop's goroutine.
func (p *loop) run() {
	events := make([]syscall.EpollEvent, pumpEvents)
	p.commands() // those that started it
	for {
		timeout := -1
		if p.nends == 0 {
			timeout = int(pumpIdleExit / time.Millisecond)
		}
		n, err := syscall.EpollWait(p.epfd, events, timeout)
		if err != nil && err != syscall.EINTR {
			panic(fmt.Sprintf("pump: epoll_wait: %v", err)) // a bad epoll fd: a bug
		}
		if n == 0 && p.nends == 0 && p.idle() {
			return
		}
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(p.wakefd) {
				p.commands()
				continue
			}
			if e := p.end(ev.Fd); e != nil {
				p.ready(e, ev.Events)
			}
		}
	}
}

// end is the side of a link that descriptor fd is, nil if none.
func (p *loop) end(fd int32) *end {
	if fd < 0 || int(fd) >= len(p.ends) {
		return nil
	}
	return p.ends[fd]
}

// setEnd files e (nil: none) under descriptor fd.
func (p *loop) setEnd(fd int, e *end) {
	if fd >= len(p.ends) {
		p.ends = append(p.ends, make([]*end, fd+1-len(p.ends))...)
	}
	switch {
	case p.ends[fd] == nil && e != nil:
		p.nends++
	case p.ends[fd] != nil && e == nil:
		p.nends--
	}
	p.ends[fd] = e
}

// idle ends the loop when no command came meanwhile.
func (p *loop) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cmds) > 0 {
		return false
	}
	p.running = false
	return true
}

// commands runs what other goroutines asked for.
func (p *loop) commands() {
	var b [8]byte
	_, _ = syscall.Read(p.wakefd, b[:])
	p.mu.Lock()
	cmds := p.cmds
	p.cmds, p.woken = nil, false
	p.mu.Unlock()
	for _, f := range cmds {
		f()
	}
}

// add registers a new link and feeds it what was read ahead.
func (p *loop) add(l *Link) {
	p.links.Add(1)
	l.added = true
	for _, e := range l.ends {
		p.setEnd(e.fd, e)
		e.events = syscall.EPOLLIN | syscall.EPOLLRDHUP
		ev := syscall.EpollEvent{Events: e.events, Fd: int32(e.fd)}
		if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, e.fd, &ev); err != nil {
			p.finish(l, fmt.Errorf("pump: epoll: %w", err))
			return
		}
	}
	for _, e := range l.ends {
		if len(e.first) > 0 && !l.ended() {
			first := e.first
			e.first = nil
			p.feed(e, first)
		}
		if e.tls != nil && !l.ended() {
			p.drainTLS(e, true) // what TLS read ahead in the handshake
		}
	}
	p.arm(l)
}

// ready handles events of one side.
func (p *loop) ready(e *end, events uint32) {
	l := e.l
	if events&syscall.EPOLLOUT != 0 && len(e.out) > 0 {
		p.flush(e)
		if l.ended() {
			return
		}
	}
	switch {
	case events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 && e.readable():
		p.read(e)
	case events&(syscall.EPOLLHUP|syscall.EPOLLERR) != 0:
		// Reported whatever was asked for: a side that is not read now
		// would be reported again and again.
		err := error(io.EOF)
		if n, serr := syscall.GetsockoptInt(e.fd, syscall.SOL_SOCKET, syscall.SO_ERROR); serr == nil && n != 0 {
			err = syscall.Errno(n)
		}
		p.finish(l, &LinkError{Side: e.side, Op: "read", Err: err})
		return
	}
	if !l.ended() {
		p.arm(l)
	}
}

func (e *end) readable() bool {
	return !e.paused && !e.full && !e.closed
}

// read reads what side e has and forwards it.
func (p *loop) read(e *end) {
	if e.tls != nil {
		p.readTLS(e)
		return
	}
	n, err := rawIO(syscall.SYS_READ, e.fd, p.buf)
	switch {
	case n > 0:
		p.feed(e, p.buf[:n])
	case err == syscall.EAGAIN || err == syscall.EINTR:
	case err == nil: // EOF: what is still to be written goes first
		e.closed = true
		p.closing(e)
	default:
		p.finish(e.l, &LinkError{Side: e.side, Op: "read", Err: err})
	}
}

// closing ends the link of a side that closed once the other side's
// output is drained.
func (p *loop) closing(e *end) {
	if other := e.l.ends[1-e.side]; len(other.out) == 0 {
		p.finish(e.l, &LinkError{Side: e.side, Op: "read", Err: io.EOF})
	}
}

// feed passes bytes read from e through its flow to the other side.
func (p *loop) feed(e *end, b []byte) {
	out, err := e.flow(e.l, b)
	if len(out) > 0 {
		p.send(e.l.ends[1-e.side], out)
	}
	if err != nil && !e.l.ended() {
		p.finish(e.l, &LinkError{Side: e.side, Op: "flow", Err: err})
	}
}

// write sends b to e now, keeping what the kernel did not take.
func (p *loop) write(e *end, b []byte) {
	if e.l.ended() {
		return
	}
	if len(e.out) > 0 {
		e.out = append(e.out, b...)
		return
	}
	for len(b) > 0 {
		n, err := rawIO(syscall.SYS_WRITE, e.fd, b)
		if n > 0 {
			b = b[n:]
		}
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			e.out = append(e.out[:0], b...)
			return
		case err != nil:
			p.finish(e.l, &LinkError{Side: e.side, Op: "write", Err: err})
			return
		}
	}
}

// rawIO reads or writes a non-blocking socket. Such a call never waits, so
// it skips the runtime's bookkeeping for calls that may block: a query
// makes four of them.
func rawIO(trap uintptr, fd int, b []byte) (int, error) {
	r, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// flush writes what e kept.
func (p *loop) flush(e *end) {
	b := e.out
	e.out = e.out[:0]
	p.write(e, b)
	if len(e.out) == 0 {
		e.out = nil // a large burst's buffer is not kept
		if other := e.l.ends[1-e.side]; other.closed {
			p.closing(other)
		}
	}
}

// arm sets what the pump waits for on each side of l: reading a side
// waits while the other side has output left (bounded buffers).
func (p *loop) arm(l *Link) {
	for _, e := range l.ends {
		e.full = len(l.ends[1-e.side].out) > 0
		var want uint32
		if e.readable() {
			want |= syscall.EPOLLIN | syscall.EPOLLRDHUP
		}
		if len(e.out) > 0 {
			want |= syscall.EPOLLOUT
		}
		if want == e.events {
			continue
		}
		e.events = want
		ev := syscall.EpollEvent{Events: want, Fd: int32(e.fd)}
		if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, e.fd, &ev); err != nil {
			p.finish(l, fmt.Errorf("pump: epoll: %w", err))
			return
		}
	}
}

// finish ends l once: its descriptors leave the epoll set and go back to
// connections for Wait.
func (p *loop) finish(l *Link, err error) {
	if l.ended() {
		return
	}
	for _, e := range l.ends {
		if p.end(int32(e.fd)) == e {
			p.setEnd(e.fd, nil)
			_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, e.fd, nil)
		}
		if len(e.out) > 0 { // last words (an error for the client) are tried once
			_, _ = syscall.Write(e.fd, e.out)
			e.out = nil
		}
	}
	if l.added {
		p.links.Add(-1)
	}
	l.err = err
	l.over = true
	l.release()
	close(l.done)
}

// deadConn stands for a connection that could not be given back.
type deadConn struct{ err error }

func (d deadConn) Read([]byte) (int, error)         { return 0, d.err }
func (d deadConn) Write([]byte) (int, error)        { return 0, d.err }
func (d deadConn) Close() error                     { return nil }
func (d deadConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (d deadConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (d deadConn) SetDeadline(time.Time) error      { return d.err }
func (d deadConn) SetReadDeadline(time.Time) error  { return d.err }
func (d deadConn) SetWriteDeadline(time.Time) error { return d.err }
