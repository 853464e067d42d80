package iga

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file is `sallyport iga suggest`: from what an identity was seen
// doing, the smallest entitlements that would have admitted all of it, and
// what its current entitlements grant that it never used. It is pure
// logic: the caller gathers the observations (the session index and the
// recordings' exec commands) and passes them in.

// Observation is one thing an identity was seen doing: a session's action
// on a target as a login, and for exec the command line it ran.
type Observation struct {
	Target  string
	Login   string
	Action  Action
	Command string // exec only; empty otherwise
}

// Suggestion is what Suggest proposes for one identity.
type Suggestion struct {
	Identity string
	// Entitlements are the smallest entitlements that admit every
	// observation, sorted by target and login. Expiry and source blocks
	// are kept from the current entitlement of the same target and login.
	Entitlements []Entitlement
	// Notes explain, per entitlement (same index), the choices made: a
	// wildcard generalised from several commands, commands left out.
	Notes [][]string
	// Unused lists what the current entitlements grant that no
	// observation used, one sentence each.
	Unused []string
}

// minGeneralise is how many distinct commands, differing in one argument,
// it takes before Suggest writes them as one pattern with a `*`.
const minGeneralise = 3

// Suggest proposes entitlements for id from what it was seen doing.
func Suggest(id Identity, obs []Observation) Suggestion {
	s := Suggestion{Identity: id.ID}
	groups := map[[2]string][]Observation{}
	for _, o := range obs {
		k := [2]string{o.Target, o.Login}
		groups[k] = append(groups[k], o)
	}
	keys := slices.SortedFunc(mapKeys(groups), func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	for _, k := range keys {
		e, notes := suggestEntitlement(current(id, k[0], k[1]), k[0], k[1], groups[k])
		s.Entitlements = append(s.Entitlements, e)
		s.Notes = append(s.Notes, notes)
	}
	s.Unused = unusedGrants(id, obs)
	return s
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// current is id's entitlement on target as login, if any.
func current(id Identity, target, login string) Entitlement {
	for _, e := range id.Entitlements {
		if e.Target == target && e.Login == login {
			return e
		}
	}
	return Entitlement{}
}

func suggestEntitlement(cur Entitlement, target, login string, obs []Observation) (Entitlement, []string) {
	e := Entitlement{Target: target, Login: login, Expires: cur.Expires, From: cur.From}
	var commands []string
	for _, o := range obs {
		if o.Action != ActionConnect && !slices.Contains(e.Actions, o.Action) {
			e.Actions = append(e.Actions, o.Action)
		}
		if o.Action == ActionExec && !slices.Contains(commands, o.Command) {
			commands = append(commands, o.Command)
		}
	}
	slices.SortFunc(e.Actions, func(a, b Action) int { return cmp.Compare(actionRank(a), actionRank(b)) })
	if len(commands) == 0 {
		return e, nil
	}
	var notes []string
	switch {
	case slices.Contains(e.Actions, ActionShell):
		notes = append(notes, "exec left unrestricted: it also opened shells, and a shell runs any command")
	case slices.ContainsFunc(commands, func(c string) bool { return CheckCommandPattern(c) != nil }):
		notes = append(notes, "exec left unrestricted: a command it ran cannot be written as a pattern (empty, a control character, or longer than 4 KiB)")
	default:
		e.Commands, notes = generalise(commands)
	}
	return e, notes
}

// generalise turns distinct commands into patterns: commands that differ
// in exactly one argument, at least minGeneralise of them, become one
// pattern with a `*` standing for the part that differs; the rest stay
// exact. It says which patterns it generalised.
func generalise(commands []string) ([]string, []string) {
	slices.Sort(commands)
	used := make([]bool, len(commands))
	var out, notes []string
	for i := range commands {
		if used[i] {
			continue
		}
		for w := 1; w < len(strings.Split(commands[i], " ")); w++ {
			same := sameButWord(commands, i, w)
			if len(same) < minGeneralise {
				continue
			}
			group := make([]string, len(same))
			for j, k := range same {
				group[j] = commands[k]
			}
			if p, ok := wildcardFor(group, w); ok {
				for _, k := range same {
					used[k] = true
				}
				out = append(out, p)
				notes = append(notes, fmt.Sprintf("%q generalised from %d commands that differ in argument %d: %s", p, len(group), w, strings.Join(quoteAll(group, 4), ", ")))
				break
			}
		}
		if !used[i] {
			used[i] = true
			out = append(out, commands[i])
		}
	}
	slices.Sort(out)
	return slices.Compact(out), notes
}

// sameButWord lists the unused commands that have command i's words
// everywhere but at word w.
func sameButWord(commands []string, i, w int) []int {
	ref := strings.Split(commands[i], " ")
	var out []int
	for k, c := range commands {
		words := strings.Split(c, " ")
		if len(words) != len(ref) {
			continue
		}
		if slices.Equal(words[:w], ref[:w]) && slices.Equal(words[w+1:], ref[w+1:]) {
			out = append(out, k)
		}
	}
	return out
}

// wildcardFor writes word w of the group as prefix*suffix, keeping what all
// share, and checks that the pattern admits every command of the group.
func wildcardFor(group []string, w int) (string, bool) {
	words := make([]string, len(group))
	for i, c := range group {
		words[i] = strings.Split(c, " ")[w]
	}
	prefix, suffix := words[0], words[0]
	shortest := len(words[0])
	for _, x := range words[1:] {
		prefix = commonPrefix(prefix, x)
		suffix = commonSuffix(suffix, x)
		shortest = min(shortest, len(x))
	}
	// Keep only whole parts (a directory, an extension, an option's
	// name): a shared "ly" of nightly and weekly is a coincidence.
	prefix = prefix[:strings.LastIndexAny(prefix, wordSeparators)+1]
	if i := strings.IndexAny(suffix, wordSeparators); i >= 0 {
		suffix = suffix[i:]
	} else {
		suffix = ""
	}
	// Each word must keep at least one character for the `*`.
	keep := shortest - 1
	prefix = prefix[:min(len(prefix), keep)]
	keep -= len(prefix)
	suffix = suffix[len(suffix)-min(len(suffix), keep):]
	parts := strings.Split(group[0], " ")
	parts[w] = prefix + "*" + suffix
	p := strings.Join(parts, " ")
	if CheckCommandPattern(p) != nil {
		return "", false
	}
	for _, c := range group {
		if !CommandMatches(p, c) {
			return "", false
		}
	}
	return p, true
}

// wordSeparators split the parts of a word that generalise keeps whole.
const wordSeparators = "/.=:,@"

func commonPrefix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return a[:n]
}

func commonSuffix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[len(a)-1-n] == b[len(b)-1-n] {
		n++
	}
	return a[len(a)-n:]
}

func quoteAll(ss []string, most int) []string {
	var out []string
	for i, s := range ss {
		if i == most {
			out = append(out, fmt.Sprintf("… %d more", len(ss)-most))
			break
		}
		out = append(out, fmt.Sprintf("%q", s))
	}
	return out
}

// unusedGrants says what id's entitlements grant that no observation used.
func unusedGrants(id Identity, obs []Observation) []string {
	var out []string
	for _, e := range id.Entitlements {
		var unused []string
		for _, a := range e.Actions {
			if !slices.ContainsFunc(obs, func(o Observation) bool { return o.Target == e.Target && o.Login == e.Login && o.Action == a }) {
				unused = append(unused, string(a))
			}
		}
		if len(unused) == len(e.Actions) {
			out = append(out, fmt.Sprintf("%s as %s: never used", e.Target, e.Login))
			continue
		}
		if len(unused) > 0 {
			out = append(out, fmt.Sprintf("%s as %s: %s never used", e.Target, e.Login, strings.Join(unused, ", ")))
		}
		for _, p := range e.Commands {
			if !slices.ContainsFunc(obs, func(o Observation) bool {
				return o.Target == e.Target && o.Login == e.Login && o.Action == ActionExec && CommandMatches(p, o.Command)
			}) {
				out = append(out, fmt.Sprintf("%s as %s: command %q never run", e.Target, e.Login, p))
			}
		}
		if slices.Contains(e.Actions, ActionExec) && len(e.Commands) == 0 {
			out = append(out, fmt.Sprintf("%s as %s: exec of any command", e.Target, e.Login))
		}
	}
	return out
}

// MarshalSuggestion writes the suggestion as a registry file that `iga
// apply -f` accepts: id with its entitlements replaced by the suggested
// ones, the notes as comments above each entitlement and what was never
// used in the header. header is the file's first comment lines.
func MarshalSuggestion(id Identity, s Suggestion, header string) ([]byte, error) {
	id = canonicalIdentity(id)
	id.Entitlements = s.Entitlements
	id.LastUsed = time.Time{}
	n := identityNode(id)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "entitlements" {
			continue
		}
		for j, en := range n.Content[i+1].Content {
			if j < len(s.Notes) && len(s.Notes[j]) > 0 {
				en.HeadComment = strings.Join(s.Notes[j], "\n")
			}
		}
	}
	identities := seqNode(blockStyle)
	identities.Content = append(identities.Content, n)
	root := mapNode(blockStyle, "identities", identities)
	lines := []string{header}
	if len(s.Unused) > 0 {
		lines = append(lines, "", "Granted now but not used in the window (left out below):")
		for _, u := range s.Unused {
			lines = append(lines, "  "+u)
		}
	}
	root.HeadComment = strings.Join(lines, "\n")
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, fmt.Errorf("write suggestion for %s: %w", id.ID, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write suggestion for %s: %w", id.ID, err)
	}
	return buf.Bytes(), nil
}
