package iga

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"
)

// File is a parsed registry file (`sallyport iga apply -f`): the Doc it
// declares plus the line each item came from, so that the problems Apply
// finds against the store still point at file:line.
//
// ParseFile returns the Doc with every list inside an item in canonical
// order (see MarshalDoc); people and identities stay in file order.
type File struct {
	// Name is the file name used in problems, e.g. "registry.yaml".
	Name string
	// Doc is what the file declares.
	Doc Doc

	people     map[string]int // person id → line
	identities map[string]*identityLines
	// problems are what ParseFile found; Apply reports them together with
	// what only the store can tell, so one run lists everything.
	problems []Problem
}

// identityLines remembers where the parts of one identity are, for the
// checks Apply runs against the store and the config's targets.
type identityLines struct {
	at            int
	owner         int
	holders       map[string]int
	certification int
	targets       map[string]int // first line naming each target
}

// Problem is one thing wrong with a registry file, at a line (0 when the
// line is unknown).
type Problem struct {
	File string
	Line int
	Msg  string
}

// String formats the problem as "file:line: msg", the form editors jump to.
func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// FileError is a refused registry file: every problem found, sorted by line.
// Nothing was applied.
type FileError struct {
	Problems []Problem
}

// Error returns one "file:line: msg" per line.
func (e *FileError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// ParseFile parses and validates a registry file. It reports every problem
// it finds at once as a *FileError: malformed YAML, unknown or repeated
// keys, duplicate ids, unknown kinds, states, roles and actions, invalid SSH
// keys, bad dates and CIDRs, holders on an identity that is not
// break-glass. Checks that need the store or the policy (unknown people,
// certification length, unknown targets) are Apply's. When the YAML itself
// decoded, the File comes back with the error: Apply then reports the
// parse problems and its own together, and changes nothing.
func ParseFile(name string, data []byte) (*File, error) {
	p := &fileParser{name: name}
	f := &File{Name: name, people: map[string]int{}, identities: map[string]*identityLines{}}
	if root := p.document(data); root != nil {
		p.fields(root, "the registry file", map[string]func(*yaml.Node){
			"people":     func(n *yaml.Node) { p.eachItem(n, "people", func(n *yaml.Node) { p.addPerson(f, n) }) },
			"identities": func(n *yaml.Node) { p.eachItem(n, "identities", func(n *yaml.Node) { p.addIdentity(f, n) }) },
		})
	}
	if len(p.problems) == 0 {
		return f, nil
	}
	if f.Doc.People == nil && f.Doc.Identities == nil {
		return nil, p.err()
	}
	// Hand back what parsed too: Apply adds the store's findings (unknown
	// owners, over-long certifications) and refuses the whole file.
	f.problems = p.problems
	return f, p.err()
}

// FileFromDoc turns a Doc built in code (the demo's seed, a test) into a
// File for Apply, validating it exactly as a file on disk would be.
func FileFromDoc(name string, d Doc) (*File, error) {
	data, err := MarshalDoc(d)
	if err != nil {
		return nil, err
	}
	return ParseFile(name, data)
}

// fileParser walks the YAML node tree, collecting problems instead of
// stopping at the first.
type fileParser struct {
	name     string
	problems []Problem
}

func (p *fileParser) add(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.problems = append(p.problems, Problem{File: p.name, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *fileParser) err() *FileError {
	sort.SliceStable(p.problems, func(i, j int) bool { return p.problems[i].Line < p.problems[j].Line })
	return &FileError{Problems: p.problems}
}

// yamlErrorLine splits yaml's "yaml: line N: msg" so the line lands where
// every other problem puts it.
var yamlErrorLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document decodes the one YAML document of the file and returns its root.
func (p *fileParser) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) || (err == nil && len(doc.Content) == 0) {
		p.add(nil, "the file is empty; a registry file has a people: and an identities: list")
		return nil
	}
	if err != nil {
		p.addYAMLError(err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p.add(&extra, "more than one YAML document (---); put the whole registry in one document")
		return nil
	}
	return doc.Content[0]
}

// yamlParserProblems start the messages of yaml's parser (as opposed to
// its scanner). yaml reports their line counting from 0, so one is added.
var yamlParserProblems = []string{
	"did not find expected <", "did not find expected key", "did not find expected node content",
	"did not find expected ','", "did not find expected '-'", "found duplicate %", "found incompatible", "found undefined tag",
}

func (p *fileParser) addYAMLError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlErrorLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.ContainsFunc(yamlParserProblems, func(pp string) bool { return strings.HasPrefix(msg, pp) }) {
			line++
		}
	}
	p.problems = append(p.problems, Problem{File: p.name, Line: line, Msg: "malformed YAML: " + msg})
}

// usable reports whether n can be read at all; aliases are refused because
// following them lets a small file expand without bound.
func (p *fileParser) usable(n *yaml.Node, what string) bool {
	if n.Kind == yaml.AliasNode {
		p.add(n, "%s: YAML aliases (*name) are not supported; write the value out", what)
		return false
	}
	return true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// fields walks a mapping, calling the handler of each known key and
// reporting unknown and repeated keys with their lines.
func (p *fileParser) fields(n *yaml.Node, what string, handlers map[string]func(*yaml.Node)) {
	if !p.usable(n, what) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.add(n, "%s: want a mapping (key: value), got %s", what, kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if first, dup := seen[k.Value]; dup {
			p.add(k, "%s: key %q repeated (first at line %d)", what, k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		h, ok := handlers[k.Value]
		if !ok || k.Kind != yaml.ScalarNode {
			p.add(k, "%s: unknown key %q; known keys: %s", what, k.Value, knownKeys(handlers))
			continue
		}
		h(v)
	}
}

func knownKeys(handlers map[string]func(*yaml.Node)) string {
	keys := make([]string, 0, len(handlers))
	for k := range handlers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// eachItem calls fn for every element of a list; null is an empty list.
func (p *fileParser) eachItem(n *yaml.Node, what string, fn func(*yaml.Node)) {
	if !p.usable(n, what) || isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n, "%s: want a list, got %s", what, kindName(n))
		return
	}
	for _, item := range n.Content {
		if p.usable(item, what) {
			fn(item)
		}
	}
}

// str reads a scalar as a string; null is "".
func (p *fileParser) str(n *yaml.Node, what string) string {
	if !p.usable(n, what) || isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		p.add(n, "%s: want a single value, got %s", what, kindName(n))
		return ""
	}
	return n.Value
}

// strs reads a list of scalars, reporting any repeated entry.
func (p *fileParser) strs(n *yaml.Node, what string) ([]string, []int) {
	var out []string
	var lines []int
	seen := map[string]int{}
	p.eachItem(n, what, func(item *yaml.Node) {
		s := p.str(item, what)
		if first, dup := seen[s]; dup {
			p.add(item, "%s: %q listed twice (first at line %d)", what, s, first)
			return
		}
		seen[s] = item.Line
		out = append(out, s)
		lines = append(lines, item.Line)
	})
	return out, lines
}

// scalarField returns the value of key in mapping n without reporting
// anything, so that messages about an item can name it before its id is
// validated.
func scalarField(n *yaml.Node, key string) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

// itemName names a list item in messages: by its id when it has one.
func itemName(kind string, n *yaml.Node) string {
	if id := scalarField(n, "id"); id != "" {
		return fmt.Sprintf("%s %s", kind, id)
	}
	return fmt.Sprintf("%s at line %d", kind, n.Line)
}

// Dates in a registry file are either a day, YYYY-MM-DD, meaning 00:00:00
// UTC at the start of that day, or an RFC 3339 timestamp such as
// 2027-03-01T12:00:00Z. They are kept to the second, in UTC.
const (
	dayLayout  = "2006-01-02"
	timeLayout = time.RFC3339
)

// parseTime reads a registry-file date.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(dayLayout, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(timeLayout, s); err == nil && t.Year() > 0 {
		return t.UTC().Truncate(time.Second), nil
	}
	return time.Time{}, fmt.Errorf("bad date %q: want YYYY-MM-DD (00:00:00 UTC that day) or RFC 3339 like 2027-03-01T12:00:00Z", s)
}

// formatTime writes a date the way parseTime reads it, as a plain day when
// it is midnight UTC.
func formatTime(t time.Time) string {
	t = t.UTC().Truncate(time.Second)
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.Format(dayLayout)
	}
	return t.Format(timeLayout)
}

// canonicalSSHKey parses one public key in authorized_keys form and writes
// it back as "type base64 [comment]". Options, private keys and weak keys
// are refused.
func canonicalSSHKey(s string) (string, error) {
	pub, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return "", fmt.Errorf("invalid SSH public key %q: want authorized_keys form, e.g. ssh-ed25519 AAAA… comment", abbreviate(s))
	}
	if len(options) > 0 {
		return "", fmt.Errorf("SSH key options (%s) are not supported; give the bare key", strings.Join(options, ","))
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return "", fmt.Errorf("more than one SSH key in one entry; list each key separately")
	}
	if err := strongKey(pub); err != nil {
		return "", err
	}
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	if comment = strings.TrimSpace(comment); comment != "" {
		key += " " + comment
	}
	return key, nil
}

// minRSABits is the smallest RSA key accepted; NIST retired 1024-bit RSA.
const minRSABits = 2048

// strongKey refuses certificates (a binding is to a key, and certificates
// expire on their own terms), DSA and short RSA keys, which OpenSSH itself
// no longer trusts.
func strongKey(pub ssh.PublicKey) error {
	if _, isCert := pub.(*ssh.Certificate); isCert {
		return fmt.Errorf("an SSH certificate is not a key to bind; give the plain public key (ssh-ed25519 AAAA…)")
	}
	if pub.Type() == ssh.KeyAlgoDSA {
		return fmt.Errorf("ssh-dss keys are refused as too weak; use ssh-ed25519")
	}
	ck, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return nil
	}
	if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
		return fmt.Errorf("a %d-bit RSA key is too weak; use ssh-ed25519 or RSA of at least %d bits", rk.N.BitLen(), minRSABits)
	}
	return nil
}

// keyBody is the type and base64 of a canonical key, without its comment:
// two entries with the same body are the same key.
func keyBody(key string) string {
	fields := strings.Fields(key)
	if len(fields) < 2 {
		return key
	}
	return fields[0] + " " + fields[1]
}

// abbreviate keeps error messages about long keys short.
func abbreviate(s string) string {
	const keep = 40
	if len(s) <= keep {
		return s
	}
	return s[:keep] + "…"
}

// canonicalCIDR checks an address block and writes it in canonical form.
// Host bits set usually mean a typo, so they are refused rather than masked.
func canonicalCIDR(s string) (string, error) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		if _, ipErr := netip.ParseAddr(s); ipErr == nil {
			return "", fmt.Errorf("bad CIDR %q: give a block, e.g. %s/32 for one address", s, s)
		}
		return "", fmt.Errorf("bad CIDR %q: want an address block such as 10.1.0.0/16", s)
	}
	if pfx.Masked() != pfx {
		return "", fmt.Errorf("bad CIDR %q: host bits are set; did you mean %s?", s, pfx.Masked())
	}
	return pfx.String(), nil
}

// validIssuer reports whether s is an absolute http(s) URL, the form of
// an OIDC iss claim.
func validIssuer(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && !hasSpaceOrControl(s)
}
