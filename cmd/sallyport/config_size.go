package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Size is a YAML byte size: a whole number of bytes, or one with a unit —
// KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000), e.g. 16MiB.
type Size int64

var sizeRE = regexp.MustCompile(`^(\d+)\s*([KMG]i?B)?$`)

var sizeUnits = map[string]int64{"": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}

// maxSize bounds a configured size: far above any sane capture limit, far
// below overflow.
const maxSize = 1 << 50

// ParseSize parses a size as Size documents it.
func ParseSize(s string) (Size, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with KiB, MiB, GiB, KB, MB or GB (e.g. 16MiB)", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > maxSize/sizeUnits[m[2]] {
		return 0, fmt.Errorf("size %q is out of range", s)
	}
	return Size(n * sizeUnits[m[2]]), nil
}

// UnmarshalYAML reads a size with its unit.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}
