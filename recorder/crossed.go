package recorder

// Every byte that crossed the bastion in a session is counted, whether or
// not the recording keeps it: terminal output and input, exec channels'
// streams whole (exec_end's totals, past the capture limit too), sftp
// reads and writes, forwards both ways, and a query's result bytes when
// the proxy measured them. legacy scp is not counted from its scp events:
// it runs on an exec channel, whose streams count it already. The total is
// the session index's bytes (StateChange.Bytes) and the end event's.

// crossedBy is how many bytes crossed according to event ev.
func crossedBy(ev *Event) int64 {
	switch ev.Type {
	case EventSFTP, EventQuery:
		return ev.Bytes
	case EventForward:
		if ev.ToTarget > 0 || ev.ToClient > 0 {
			return ev.ToTarget + ev.ToClient
		}
		return ev.Bytes
	case EventExecEnd:
		var n int64
		for _, st := range ev.Streams {
			n += st.Bytes
		}
		return n
	}
	return 0
}
