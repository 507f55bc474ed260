package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/rfc3161"
)

// Lines of events.jsonl, clock.jsonl, keys.jsonl and config.jsonl are
//
//	{"position":N,"revision":R,"payload":PAYLOAD}
//
// PAYLOAD being the event's stored envelope, byte for byte: the bytes the
// transparency log hashed. Position is its place in the store's global
// order, Revision its index in its stream.

// Line is one such line, parsed.
type Line struct {
	Position uint64          `json:"position"`
	Revision uint64          `json:"revision"`
	Payload  json.RawMessage `json:"payload"`
}

// AppendLine appends the line of an event, newline included.
func AppendLine(b []byte, position, revision uint64, payload []byte) []byte {
	b = append(b, `{"position":`...)
	b = strconv.AppendUint(b, position, 10)
	b = append(b, `,"revision":`...)
	b = strconv.AppendUint(b, revision, 10)
	b = append(b, `,"payload":`...)
	b = append(b, payload...)
	return append(b, "}\n"...)
}

// ParseLine reads a line (without its newline) and insists that it is
// exactly as AppendLine writes it, so that its payload is the bytes
// between the prefix and the final brace.
func ParseLine(line []byte) (Line, error) {
	var l Line
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return l, fmt.Errorf("not a line of the export: %w", err)
	}
	if err := CheckPayload(l.Payload); err != nil {
		return l, err
	}
	if !bytes.Equal(AppendLine(nil, l.Position, l.Revision, l.Payload), append(line, '\n')) {
		return l, errors.New(`not a line as the export writes it: {"position":N,"revision":R,"payload":EVENT}`)
	}
	return l, nil
}

// CheckPayload checks that an event's payload can be one line of a
// bundle: a JSON object, compact, so without a newline.
func CheckPayload(p []byte) error {
	if len(p) == 0 || p[0] != '{' || !json.Valid(p) {
		return errors.New("the payload is not a JSON object")
	}
	var c bytes.Buffer
	if err := json.Compact(&c, p); err != nil {
		return err
	}
	if !bytes.Equal(c.Bytes(), p) || bytes.ContainsAny(p, "\r\n") {
		return errors.New("the payload is not compact JSON on one line")
	}
	return nil
}

// IsSerial: a serial as streams name it, lower-case hex without leading
// zeros (and so a safe file name).
func IsSerial(s string) bool {
	if s == "" || len(s) > 64 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

// TokenFile is the file a TimestampIssued's token is kept in, by its
// protocol: an RFC 3161 token as the granted TimeStampResp that carried
// it (tokens/SERIAL.tsr), an Authenticode countersignature as is
// (tokens/SERIAL.p7).
func TokenFile(ti *events.TimestampIssued) (path string, body []byte, err error) {
	if !IsSerial(ti.Serial) {
		return "", nil, fmt.Errorf("serial %q is not lower-case hex without leading zeros", ti.Serial)
	}
	switch ti.Protocol {
	case "", "rfc3161":
		return TokensDir + "/" + ti.Serial + ".tsr", rfc3161.GrantedResponse(ti.Token), nil
	case events.ProtocolAuthenticode:
		return TokensDir + "/" + ti.Serial + ".p7", ti.Token, nil
	}
	return "", nil, fmt.Errorf("token of protocol %q", ti.Protocol)
}
