package events

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// The events the read side decodes for every request are decoded by hand,
// as they are encoded by hand (jsonenc.go): encoding/json's reflection
// takes ~45 µs for a TimestampIssued. Each decoder accepts exactly what
// json.Unmarshal accepts into the same struct and yields the same value:
// keys matched exactly, else case-insensitively as encoding/json folds
// them; the last of a duplicated key wins, decoded into what the earlier
// one left; null leaves a field as it is (a slice becomes nil); unknown
// keys are skipped, their values still checked. jsondec_test.go holds the
// decoders to encoding/json with random values and by fuzzing.

// decoder reads JSON from b at i.
type decoder struct {
	b []byte
	i int
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// SyntaxError is a decoder's complaint about its input: where and what.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("JSON at offset %d: %s", e.Offset, e.Msg) }

func (d *decoder) fail(msg string) error { return &SyntaxError{Offset: d.i, Msg: msg} }

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// end checks that nothing but white space follows the value.
func (d *decoder) end() error {
	d.ws()
	if d.i != len(d.b) {
		return d.fail("data after the value")
	}
	return nil
}

// null consumes a null literal if one is next.
func (d *decoder) null() (bool, error) {
	if d.i < len(d.b) && d.b[d.i] == 'n' {
		return true, d.literal("null")
	}
	return false, nil
}

func (d *decoder) literal(lit string) error {
	if len(d.b)-d.i < len(lit) || string(d.b[d.i:d.i+len(lit)]) != lit {
		return d.fail("invalid literal")
	}
	d.i += len(lit)
	return d.delimited()
}

// delimited checks that a number or literal ends where it should.
func (d *decoder) delimited() error {
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r', ',', '}', ']':
		default:
			return d.fail("invalid character after a value")
		}
	}
	return nil
}

// fields are the JSON names of a struct's members, as given and folded.
type fields struct {
	names, folded []string
}

func newFields(names ...string) fields {
	f := fields{names: names}
	for _, n := range names {
		f.folded = append(f.folded, string(foldName(nil, []byte(n))))
	}
	return f
}

// foldName folds a key as encoding/json does to match it case-insensitively:
// ASCII upper-cased, other runes to the smallest of their fold set.
func foldName(out, in []byte) []byte {
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		out = utf8.AppendRune(out, r)
		i += n
	}
	return out
}

// object decodes an object whose members named in f are decoded by
// member(the name as f gives it); the others are skipped. A null object
// decodes nothing, as encoding/json has it.
func (d *decoder) object(f *fields, depth int, member func(string) error) error {
	d.ws()
	if d.i >= len(d.b) {
		return d.fail("unexpected end of input")
	}
	switch d.b[d.i] {
	case 'n':
		return d.literal("null")
	case '{':
	default:
		return d.fail("not an object")
	}
	if depth > maxDepth {
		return d.fail("nested too deeply")
	}
	d.i++
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return nil
	}
	next := 0 // the encoders write the members in the order of f
	for {
		d.ws()
		key, err := d.key()
		if err != nil {
			return err
		}
		d.ws()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return d.fail("no colon after an object key")
		}
		d.i++
		d.ws()
		var k int
		if next < len(f.names) && string(key) == f.names[next] {
			k = next
		} else {
			k = f.match(key)
		}
		if k >= 0 {
			next = k + 1
			err = member(f.names[k])
		} else {
			err = d.skip(depth + 1)
		}
		if err != nil {
			return err
		}
		d.ws()
		if d.i >= len(d.b) {
			return d.fail("unexpected end of input")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.fail("no comma or closing brace after an object member")
		}
	}
}

// match returns the index of key's name, exact or folded, or -1.
func (f *fields) match(key []byte) int {
	for k, n := range f.names {
		if string(key) == n {
			return k
		}
	}
	var buf [64]byte
	folded := foldName(buf[:0], key)
	for k, n := range f.folded {
		if string(folded) == n {
			return k
		}
	}
	return -1
}

// key reads an object's key, unescaped.
func (d *decoder) key() ([]byte, error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, d.fail("object key is not a string")
	}
	start := d.i
	end, plain, err := d.scanString()
	if err != nil {
		return nil, err
	}
	d.i = end
	if plain {
		return d.b[start+1 : end-1], nil
	}
	s, err := unquoteJSON(d.b[start:end])
	return []byte(s), err
}

// scanString finds the end of the string starting at d.b[d.i] == '"',
// checking it: no control character, valid escapes. plain tells that it
// holds no escape and is valid UTF-8, so that its bytes are its value.
func (d *decoder) scanString() (end int, plain bool, err error) {
	b := d.b
	i := d.i + 1
	plain = true
	for {
		// Eight bytes at a time while none is '"', '\\', a control
		// character or outside ASCII, then byte by byte to the first.
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			const ones, highs = 0x0101010101010101, 0x8080808080808080
			quote := x ^ (ones * '"')
			slash := x ^ (ones * '\\')
			special := ((quote - ones) &^ quote) | ((slash - ones) &^ slash) | ((x - ones*0x20) &^ x) | x
			if special&highs != 0 {
				break
			}
			i += 8
		}
		for i < len(b) {
			if c := b[i]; c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
				i++
				continue
			}
			break
		}
		if i >= len(b) {
			return 0, false, &SyntaxError{Offset: i, Msg: "unterminated string"}
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, plain, nil
		case c == '\\':
			plain = false
			if i+1 >= len(b) {
				return 0, false, &SyntaxError{Offset: i, Msg: "unterminated string"}
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					return 0, false, &SyntaxError{Offset: i, Msg: "invalid \\u escape"}
				}
				i += 6
			default:
				return 0, false, &SyntaxError{Offset: i, Msg: "invalid escape"}
			}
		case c < 0x20:
			return 0, false, &SyntaxError{Offset: i, Msg: "control character in a string"}
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				plain = false // encoding/json replaces it with U+FFFD
			}
			i += n
		}
	}
}

// skipString passes the string starting at d.b[d.i] == '"', checking
// it as scanString does, for long values nobody reads as a string (a
// token's base64 within an envelope's data).
func (d *decoder) skipString() error {
	b := d.b
	i := d.i + 1
	for {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return &SyntaxError{Offset: len(b), Msg: "unterminated string"}
		}
		seg := b[i : i+q]
		if e := bytes.IndexByte(seg, '\\'); e >= 0 {
			if k := control(seg[:e]); k >= 0 {
				return &SyntaxError{Offset: i + k, Msg: "control character in a string"}
			}
			// An escape: check it, and go on after it.
			at := i + e
			switch {
			case at+1 >= len(b):
				return &SyntaxError{Offset: at, Msg: "unterminated string"}
			case b[at+1] == 'u':
				if at+6 > len(b) || !isHex4(b[at+2:at+6]) {
					return &SyntaxError{Offset: at, Msg: "invalid \\u escape"}
				}
				i = at + 6
			case bytes.IndexByte([]byte(`"\\/bfnrt`), b[at+1]) >= 0:
				i = at + 2
			default:
				return &SyntaxError{Offset: at, Msg: "invalid escape"}
			}
			continue
		}
		if k := control(seg); k >= 0 {
			return &SyntaxError{Offset: i + k, Msg: "control character in a string"}
		}
		d.i = i + q + 1
		return nil
	}
}

// control returns the index of the first byte of b below 0x20, or -1.
func control(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if (x-0x2020202020202020)&^x&0x8080808080808080 != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 {
			return i
		}
	}
	return -1
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// unquoteJSON decodes a checked JSON string with escapes or invalid UTF-8
// as encoding/json does (the rare path).
func unquoteJSON(raw []byte) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

// str decodes a string into dst; null leaves dst as it is.
func (d *decoder) str(dst *string) error {
	if d.i >= len(d.b) {
		return d.fail("unexpected end of input")
	}
	if d.b[d.i] != '"' {
		if ok, err := d.null(); ok || err != nil {
			return err
		}
		return d.typeError("string")
	}
	start := d.i
	end, plain, err := d.scanString()
	if err != nil {
		return err
	}
	d.i = end
	if plain {
		*dst = string(d.b[start+1 : end-1])
		return nil
	}
	*dst, err = unquoteJSON(d.b[start:end])
	return err
}

// typeError skips the value that is not of the kind wanted and says so:
// encoding/json, too, refuses it only once the input is known to be valid
// JSON, but refuses it.
func (d *decoder) typeError(want string) error {
	at := d.i
	if err := d.skip(1); err != nil {
		return err
	}
	return &SyntaxError{Offset: at, Msg: "value is not a " + want}
}

// bytes decodes a base64 string (standard, padded) into dst as encoding/json
// does: null makes dst nil, "" an empty slice.
func (d *decoder) bytes(dst *[]byte) error {
	if d.i >= len(d.b) {
		return d.fail("unexpected end of input")
	}
	if d.b[d.i] != '"' {
		if ok, err := d.null(); ok || err != nil {
			if ok {
				*dst = nil
			}
			return err
		}
		return d.typeError("base64 string")
	}
	// The fast path: the string's body is base64 without escapes. Its
	// alphabet holds no '"', '\\' or control character, and base64 skips
	// only '\r' and '\n', which JSON does not allow raw in a string.
	start := d.i + 1
	if n := bytes.IndexByte(d.b[start:], '"'); n >= 0 {
		body := d.b[start : start+n]
		if bytes.IndexByte(body, '\\') < 0 && bytes.IndexByte(body, '\r') < 0 && bytes.IndexByte(body, '\n') < 0 {
			out := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
			k, err := base64.StdEncoding.Decode(out, body)
			if err == nil {
				d.i = start + n + 1
				*dst = out[:k]
				return nil
			}
		}
	}
	var s string
	if err := d.str(&s); err != nil {
		return err
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	k, err := base64.StdEncoding.Decode(out, []byte(s))
	if err != nil {
		return fmt.Errorf("base64: %w", err)
	}
	*dst = out[:k]
	return nil
}

// time decodes a time as time.Time.UnmarshalJSON does: null leaves dst as
// it is; the form the events are written in, UTC with 'Z', is read here,
// any other by UnmarshalJSON itself.
func (d *decoder) time(dst *time.Time) error {
	if d.i >= len(d.b) {
		return d.fail("unexpected end of input")
	}
	if d.b[d.i] != '"' {
		if ok, err := d.null(); ok || err != nil {
			return err
		}
		return d.typeError("time")
	}
	start := d.i
	end, _, err := d.scanString()
	if err != nil {
		return err
	}
	d.i = end
	raw := d.b[start:end]
	if t, ok := parseUTC(raw); ok {
		*dst = t
		return nil
	}
	return dst.UnmarshalJSON(raw)
}

// parseUTC decodes `"YYYY-MM-DDTHH:MM:SS[.fffffffff]Z"`.
func parseUTC(v []byte) (time.Time, bool) {
	// "2006-01-02T15:04:05Z" with its quotes is 22 bytes.
	if len(v) < 22 || v[len(v)-2] != 'Z' {
		return time.Time{}, false
	}
	s := v[1 : len(v)-2]
	if s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	var frac int
	if rest := s[19:]; len(rest) > 0 {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return time.Time{}, false
		}
		f, ok := digits(rest[1:])
		if !ok {
			return time.Time{}, false
		}
		for i := len(rest) - 1; i < 9; i++ {
			f *= 10
		}
		frac = f
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, frac, time.UTC), true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// number returns the next number's text, checked against JSON's grammar.
func (d *decoder) number() ([]byte, error) {
	b, start := d.b, d.i
	i := start
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return nil, d.fail("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.i = i
			return nil, d.fail("invalid number")
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.i = i
			return nil, d.fail("invalid number")
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	d.i = i
	if err := d.delimited(); err != nil {
		return nil, err
	}
	return b[start:i], nil
}

// int64 decodes an integer into dst; null leaves dst as it is.
func (d *decoder) int64(dst *int64) error {
	if d.i >= len(d.b) {
		return d.fail("unexpected end of input")
	}
	if c := d.b[d.i]; c != '-' && (c < '0' || c > '9') {
		if ok, err := d.null(); ok || err != nil {
			return err
		}
		return d.typeError("number")
	}
	at := d.i
	num, err := d.number()
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		return &SyntaxError{Offset: at, Msg: "number " + string(num) + " is not a 64-bit integer"}
	}
	*dst = n
	return nil
}

// int decodes an integer into dst; null leaves dst as it is.
func (d *decoder) int(dst *int) error {
	n := int64(*dst)
	if err := d.int64(&n); err != nil {
		return err
	}
	if int64(int(n)) != n {
		return d.fail("number out of range")
	}
	*dst = int(n)
	return nil
}

// bool decodes true or false into dst; null leaves dst as it is.
func (d *decoder) bool(dst *bool) error {
	if d.i >= len(d.b) {
		return d.fail("unexpected end of input")
	}
	switch d.b[d.i] {
	case 't':
		if err := d.literal("true"); err != nil {
			return err
		}
		*dst = true
		return nil
	case 'f':
		if err := d.literal("false"); err != nil {
			return err
		}
		*dst = false
		return nil
	case 'n':
		return d.literal("null")
	}
	return d.typeError("boolean")
}

// array decodes an array into the slice of length n that grow extends
// and shrink cuts, element i by elem(i), into what an earlier value left
// there as encoding/json does; null makes the slice nil (shrink(-1)), []
// an empty one.
func (d *decoder) array(depth int, n int, grow func(), shrink func(int), elem func(int) error) error {
	if d.i >= len(d.b) {
		return d.fail("unexpected end of input")
	}
	switch d.b[d.i] {
	case 'n':
		if err := d.literal("null"); err != nil {
			return err
		}
		shrink(-1)
		return nil
	case '[':
	default:
		return d.typeError("array")
	}
	if depth > maxDepth {
		return d.fail("nested too deeply")
	}
	d.i++
	d.ws()
	i := 0
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		shrink(0)
		return nil
	}
	for {
		d.ws()
		if i >= n {
			grow()
			n++
		}
		if err := elem(i); err != nil {
			return err
		}
		i++
		d.ws()
		if d.i >= len(d.b) {
			return d.fail("unexpected end of input")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			shrink(i)
			return nil
		default:
			return d.fail("no comma or closing bracket after an array element")
		}
	}
}

// raw returns the next value's bytes, checked.
func (d *decoder) raw(depth int) ([]byte, error) {
	start := d.i
	if err := d.skip(depth); err != nil {
		return nil, err
	}
	return d.b[start:d.i], nil
}

// skip checks and passes the next value.
func (d *decoder) skip(depth int) error {
	if d.i >= len(d.b) {
		return d.fail("unexpected end of input")
	}
	if depth > maxDepth {
		return d.fail("nested too deeply")
	}
	switch c := d.b[d.i]; c {
	case '"':
		return d.skipString()
	case '{':
		return d.object(&noFields, depth, nil)
	case '[':
		n := 0
		return d.array(depth, 0, func() { n++ }, func(int) {}, func(int) error {
			d.ws()
			return d.skip(depth + 1)
		})
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		_, err := d.number()
		return err
	}
}

var noFields fields
