// Package renewal decides when a timestamp token loses its evidential value
// and which renewal keeps it: the rule of the renewal-due read model.
//
// A token stands on three things that age: the TSA certificate that signed
// it, the signature algorithm and key size of that certificate's key, and
// the hash algorithm of the message imprint it dates. The certificate ages
// by its notAfter; the algorithms by an algorithm catalogue, shipped as data
// (catalog.json, embedded) so that a new edition is a data change with its
// own version, its sources named beside each date. Everything here is pure:
// no clock, no files; the caller hands in the token and the catalogue.
package renewal

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

//go:embed catalog.json
var catalogJSON []byte

// Source is where a catalogue's dates come from.
type Source struct {
	// ID is what an entry names its source by.
	ID string `json:"id"`
	// Title names the document and its version.
	Title string `json:"title"`
	// Reading says how the dates were read from it, and what it leaves out.
	Reading string `json:"reading"`
}

// Catalog is one edition of the algorithm catalogue, validated. Build it
// with Load or Parse; the zero value and nil know no algorithm.
type Catalog struct {
	version string
	date    time.Time
	sources []Source
	notes   []string
	hashes  map[string]dated
	sigs    []sigRange
}

// dated is an algorithm's end of validity; until is zero when the catalogue
// lists the algorithm but could give it no date.
type dated struct {
	until  time.Time
	source string
}

// sigRange is a signature family over a range of key sizes, in bits;
// maxBits 0 means no upper bound.
type sigRange struct {
	family           string
	minBits, maxBits int
	dated
}

// The catalogue file's shape.
type catalogFile struct {
	Version    string          `json:"version"`
	Date       string          `json:"date"`
	Sources    []Source        `json:"sources"`
	Notes      []string        `json:"notes"`
	Hashes     []hashEntry     `json:"hashes"`
	Signatures []signatureFile `json:"signatures"`
}

type hashEntry struct {
	Name    string `json:"name"`
	LastDay string `json:"lastDay"`
	Source  string `json:"source"`
	ETSI    string `json:"etsi"`
}

type signatureFile struct {
	Family  string `json:"family"`
	MinBits int    `json:"minBits"`
	MaxBits int    `json:"maxBits"`
	LastDay string `json:"lastDay"`
	Source  string `json:"source"`
	ETSI    string `json:"etsi"`
}

// Load parses and validates the embedded catalogue.
func Load() (*Catalog, error) { return Parse(catalogJSON) }

// Parse reads a catalogue in catalog.json's format and validates it: the
// version is set, every date parses, every entry names a declared source,
// no hash is listed twice and, within a signature family, no two key-size
// ranges overlap. It reports every problem found, not just the first.
func Parse(data []byte) (*Catalog, error) {
	var f catalogFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("algorithm catalogue: %w", err)
	}
	if dec.More() {
		return nil, errors.New("algorithm catalogue: data after the catalogue object")
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	c := &Catalog{version: f.Version, sources: f.Sources, notes: f.Notes, hashes: map[string]dated{}}
	if f.Version == "" {
		bad("version is empty")
	}
	if d, err := time.Parse(time.DateOnly, f.Date); err != nil {
		bad("date %q: %v", f.Date, err)
	} else {
		c.date = d
	}
	sources := map[string]bool{}
	for i, s := range f.Sources {
		switch {
		case s.ID == "":
			bad("source %d has no id", i)
		case sources[s.ID]:
			bad("source %q is declared twice", s.ID)
		}
		sources[s.ID] = true
	}
	entry := func(what, lastDay, source string) dated {
		d := dated{source: source}
		if !sources[source] {
			bad("%s: source %q is not declared", what, source)
		}
		if lastDay != "" {
			day, err := time.Parse(time.DateOnly, lastDay)
			if err != nil {
				bad("%s: lastDay %q: %v", what, lastDay, err)
			} else {
				d.until = endOfDay(day)
			}
		}
		return d
	}
	for i, h := range f.Hashes {
		what := fmt.Sprintf("hash %d (%s)", i, h.Name)
		if h.Name == "" {
			bad("%s has no name", what)
			continue
		}
		if _, dup := c.hashes[h.Name]; dup {
			bad("hash %s is listed twice", h.Name)
			continue
		}
		c.hashes[h.Name] = entry(what, h.LastDay, h.Source)
	}
	for i, s := range f.Signatures {
		what := fmt.Sprintf("signature %d (%s %d-%d bits)", i, s.Family, s.MinBits, s.MaxBits)
		r := sigRange{family: s.Family, minBits: s.MinBits, maxBits: s.MaxBits, dated: entry(what, s.LastDay, s.Source)}
		switch {
		case s.Family == "":
			bad("%s has no family", what)
			continue
		case s.MinBits < 0 || s.MaxBits < 0:
			bad("%s: negative key size", what)
			continue
		case s.MaxBits != 0 && s.MaxBits < s.MinBits:
			bad("%s: maxBits below minBits", what)
			continue
		}
		for _, o := range c.sigs {
			if o.family == r.family && overlap(o, r) {
				bad("%s overlaps %s %d-%d bits", what, o.family, o.minBits, o.maxBits)
			}
		}
		c.sigs = append(c.sigs, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("algorithm catalogue %s: %w", f.Version, err)
	}
	return c, nil
}

// endOfDay is the last second of day, the way a certificate's notAfter
// names the last instant it is valid (RFC 5280 §4.1.2.5).
func endOfDay(day time.Time) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), 23, 59, 59, 0, time.UTC)
}

func overlap(a, b sigRange) bool {
	upper := func(r sigRange) int {
		if r.maxBits == 0 {
			return int(^uint(0) >> 1)
		}
		return r.maxBits
	}
	return a.minBits <= upper(b) && b.minBits <= upper(a)
}

// Version is the catalogue edition's version, stored with every assessment
// made with it.
func (c *Catalog) Version() string {
	if c == nil {
		return ""
	}
	return c.version
}

// Date is the day the edition was compiled.
func (c *Catalog) Date() time.Time {
	if c == nil {
		return time.Time{}
	}
	return c.date
}

// Sources are the documents the edition's dates come from.
func (c *Catalog) Sources() []Source {
	if c == nil {
		return nil
	}
	return append([]Source(nil), c.sources...)
}

// Notes are the edition's remarks on how it reads its sources.
func (c *Catalog) Notes() []string {
	if c == nil {
		return nil
	}
	return append([]string(nil), c.notes...)
}

// lookup results.
type status int

const (
	missing status = iota // not in the catalogue
	undated               // listed, with no end date
	valid                 // listed, valid until a date
)

func (d dated) status() status {
	if d.until.IsZero() {
		return undated
	}
	return valid
}

func (c *Catalog) hash(name string) (time.Time, status) {
	if c == nil {
		return time.Time{}, missing
	}
	d, ok := c.hashes[name]
	if !ok {
		return time.Time{}, missing
	}
	return d.until, d.status()
}

func (c *Catalog) signature(keyType string) (time.Time, status) {
	if c == nil {
		return time.Time{}, missing
	}
	family, bits, ok := ParseKeyType(keyType)
	if !ok {
		return time.Time{}, missing
	}
	for _, r := range c.sigs {
		if r.family == family && bits >= r.minBits && (r.maxBits == 0 || bits <= r.maxBits) {
			return r.until, r.status()
		}
	}
	return time.Time{}, missing
}

// HashValidUntil is the last instant the hash algorithm (named as
// TimestampRequested.hashAlgorithm names it: sha256, sha3-512, …) is valid
// for evidence; false when the catalogue does not list it or gives it no
// date.
func (c *Catalog) HashValidUntil(name string) (time.Time, bool) {
	t, s := c.hash(name)
	return t, s == valid
}

// SignatureValidUntil is the last instant a signature with a key of the
// type (as the key events name it: ecdsa-p256, rsa-3072, ed25519, …) is
// valid; false when the catalogue has no dated entry for its family and
// size.
func (c *Catalog) SignatureValidUntil(keyType string) (time.Time, bool) {
	t, s := c.signature(keyType)
	return t, s == valid
}

// ParseKeyType splits a key type into its signature family and key size in
// bits: rsa-<bits> is ("rsa", bits), ecdsa-p<bits> is ("ecdsa", bits) and
// ed25519 and ed448 are their own families with their curve's size.
func ParseKeyType(keyType string) (family string, bits int, ok bool) {
	switch keyType {
	case "ed25519":
		return "ed25519", 256, true
	case "ed448":
		return "ed448", 448, true
	}
	var size string
	switch {
	case strings.HasPrefix(keyType, "rsa-"):
		family, size = "rsa", keyType[len("rsa-"):]
	case strings.HasPrefix(keyType, "ecdsa-p"):
		family, size = "ecdsa", keyType[len("ecdsa-p"):]
	default:
		return "", 0, false
	}
	n, err := strconv.Atoi(size)
	if err != nil || n <= 0 || size[0] == '+' || size[0] == '0' {
		return "", 0, false
	}
	return family, n, true
}
