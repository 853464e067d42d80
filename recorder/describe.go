package recorder

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// describe renders an event on one line for people, with its numbers:
// what the text replay prints after "# time" and the pty timeline after
// the clock.
func describe(ev Event) string {
	switch ev.Type {
	case EventExec:
		return "exec: " + ev.Command + onChannel(ev)
	case EventShell:
		return "shell" + onChannel(ev)
	case EventCommand:
		return describeCommand(ev)
	case EventSFTP:
		return describeSFTP(ev)
	case EventSCP:
		return describeSCP(ev)
	case EventForward:
		return describeForward(ev)
	case EventQuery:
		return describeQuery(ev)
	case EventTransaction:
		return describeTransaction(ev)
	case EventNotification:
		return describeNotification(ev)
	case EventCancel:
		return describeCancel(ev)
	case EventNote:
		return describeNote(ev)
	case EventData:
		return fmt.Sprintf("data: %s, %s at offset %d", execStreamName(chanOf(ev), ev.Stream), plural(ev.Bytes, "byte"), ev.Offset)
	case EventExecEnd:
		return describeExecEnd(ev)
	case EventEnd:
		return describeEnd(ev)
	}
	b, _ := json.Marshal(ev) // a type this reader does not know: show all of it
	return ev.Type + ": " + string(b)
}

// onChannel is " (channel N)" for an event on an SSH channel.
func onChannel(ev Event) string {
	if ev.Channel == nil {
		return ""
	}
	return " (channel " + strconv.Itoa(*ev.Channel) + ")"
}

func chanOf(ev Event) int {
	if ev.Channel == nil {
		return 0
	}
	return *ev.Channel
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}

func describeCommand(ev Event) string {
	src := ev.Source
	if src == "terminal" {
		src = "typed in the terminal, as echoed"
	}
	if src != "" {
		src = " (" + src + ")"
	}
	return "command" + src + onChannel(ev) + ": " + ev.Command
}

func describeSFTP(ev Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "sftp %s %s", ev.Op, ev.Path)
	if ev.To != "" {
		fmt.Fprintf(&b, " -> %s", ev.To)
	}
	if ev.Bytes > 0 {
		fmt.Fprintf(&b, ", %s", plural(ev.Bytes, "byte"))
	}
	describeFile(&b, ev)
	return b.String() + onChannel(ev) + describeOutcome(ev.Outcome)
}

func describeSCP(ev Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "scp %s %s", cmp(ev.Op, ev.Direction), ev.Path)
	if ev.Size != nil {
		fmt.Fprintf(&b, ", size %d", *ev.Size)
	}
	if ev.Size == nil || ev.Bytes != *ev.Size {
		fmt.Fprintf(&b, ", %s crossed", plural(ev.Bytes, "byte"))
	}
	describeFile(&b, ev)
	return b.String() + onChannel(ev) + describeOutcome(ev.Outcome)
}

// cmp is a, or b when a is empty.
func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// describeFile adds a moved file's mode and hash.
func describeFile(b *strings.Builder, ev Event) {
	if ev.Mode != "" {
		fmt.Fprintf(b, ", mode %s", ev.Mode)
	}
	if ev.SHA256 != "" {
		fmt.Fprintf(b, ", sha256 %s", ev.SHA256)
	}
}

func describeForward(ev Event) string {
	var b strings.Builder
	b.WriteString("forward")
	if ev.Op != "" {
		b.WriteString(" " + ev.Op)
	}
	fmt.Fprintf(&b, " to %s:%d%s", ev.Host, ev.Port, onChannel(ev))
	switch {
	case ev.ToTarget > 0 || ev.ToClient > 0:
		fmt.Fprintf(&b, ": %s to the target, %s to the client", plural(ev.ToTarget, "byte"), plural(ev.ToClient, "byte"))
	case ev.Bytes > 0 || ev.Op == "close":
		fmt.Fprintf(&b, ": %s", plural(ev.Bytes, "byte"))
	}
	if ev.DurationMS > 0 {
		fmt.Fprintf(&b, " in %.1f s", ev.DurationMS/1000)
	}
	return b.String() + describeOutcome(ev.Outcome)
}

// describeOutcome is ": error …" for a failed operation, else "".
func describeOutcome(o *Outcome) string {
	if o == nil || o.Error == "" && o.ErrorCode == "" {
		return ""
	}
	return strings.TrimRight(": error "+o.ErrorCode, " ") + ": " + o.Error
}

func describeNote(ev Event) string {
	s := "note" + onChannel(ev) + ": " + ev.Text
	if ev.ExitStatus != nil && !strings.Contains(ev.Text, strconv.Itoa(*ev.ExitStatus)) {
		s += " " + strconv.Itoa(*ev.ExitStatus)
	}
	if ev.Signal != "" && !strings.Contains(ev.Text, ev.Signal) {
		s += " (signal " + ev.Signal + ")"
	}
	return s
}

// describeExecEnd sums up an exec channel: how it ended, then each stream's
// length, what was kept of it and its SHA-256 (of all of it, kept or not).
func describeExecEnd(ev Event) string {
	var b strings.Builder
	b.WriteString("exec_end" + onChannel(ev) + ": ")
	switch {
	case ev.Signal != "":
		b.WriteString("killed by signal " + ev.Signal)
	case ev.ExitStatus != nil:
		fmt.Fprintf(&b, "exit status %d", *ev.ExitStatus)
	default:
		b.WriteString("no exit status")
	}
	for _, name := range execStreams {
		st, ok := ev.Streams[name]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "; %s %s", name, plural(st.Bytes, "byte"))
		switch {
		case st.NotCaptured != "" && st.Bytes > 0:
			fmt.Fprintf(&b, " (not kept: %s)", st.NotCaptured)
		case st.Truncated || st.Captured < st.Bytes:
			fmt.Fprintf(&b, " (%d kept, truncated)", st.Captured)
		}
		if st.Bytes > 0 {
			fmt.Fprintf(&b, " sha256 %s", st.SHA256)
		}
	}
	return b.String()
}

func describeEnd(ev Event) string {
	s := "end:"
	if ev.ExitStatus != nil {
		s += " exit status " + strconv.Itoa(*ev.ExitStatus)
	}
	if ev.Signal != "" {
		s += " killed by signal " + ev.Signal
	}
	s += " " + cmp(ev.Reason, "closed")
	if ev.Bytes > 0 {
		s += "; " + plural(ev.Bytes, "byte") + " crossed"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
