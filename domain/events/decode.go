package events

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// DecodeData decodes the data of an event of a registered type, as
// json.Unmarshal would into its struct, and returns the struct itself (a
// TimestampIssued, not a *TimestampIssued). The events every request
// records are decoded by hand (jsondec.go), the others by encoding/json.
func DecodeData(eventType string, data []byte) (Event, error) {
	dec, ok := decoders[eventType]
	if !ok {
		return nil, fmt.Errorf("decode %s: unknown event type", eventType)
	}
	e, err := dec(data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return e, nil
}

// DecodeEnvelope parses a stored envelope as json.Unmarshal would into an
// Envelope, without decoding its data: Data is the data's bytes within
// payload (not a copy), checked to be JSON.
func DecodeEnvelope(payload []byte) (Envelope, error) {
	var env Envelope
	d := decoder{b: payload}
	if err := env.decodeJSON(&d, 1); err != nil {
		return Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	if err := d.end(); err != nil {
		return Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	return env, nil
}

// handDecoders decode the events of a request.
var handDecoders = map[string]func([]byte) (Event, error){
	TypeTimestampRequested:   decodeHand[TimestampRequested],
	TypeFilterDecided:        decodeHand[FilterDecided],
	TypeFilterChainDecided:   decodeHand[FilterChainDecided],
	TypeTimestampIssued:      decodeHand[TimestampIssued],
	TypeTimestampRejected:    decodeHand[TimestampRejected],
	TypeTimestampUndelivered: decodeHand[TimestampUndelivered],
	TypeTimestampForwarded:   decodeHand[TimestampForwarded],
}

// DecodeEvent decodes a stored envelope and its data in one pass, for an
// event of a registered type: what DecodeEnvelope and then DecodeData of
// its Data return, without reading the data twice.
func DecodeEvent(eventType string, payload []byte) (Envelope, Event, error) {
	dec, ok := inPlace[eventType]
	if !ok {
		return Envelope{}, nil, fmt.Errorf("decode %s: unknown event type", eventType)
	}
	var (
		env     Envelope
		e       Event
		dataErr error
		seen    bool
	)
	d := decoder{b: payload}
	err := d.object(&envelopeFields, 1, func(name string) error {
		if name != "data" {
			return env.member(&d, 1, name)
		}
		// The last "data" wins, decoded afresh as DecodeData would; one
		// that does not decode is still passed (checked) in case a later
		// one does.
		start := d.i
		seen = true
		e, dataErr = dec(&d, 2)
		if dataErr != nil {
			d.i = start
			if err := d.skip(2); err != nil {
				return err
			}
		}
		env.Data = d.b[start:d.i]
		return nil
	})
	if err == nil {
		err = d.end()
	}
	if err != nil {
		return Envelope{}, nil, fmt.Errorf("decode envelope: %w", err)
	}
	if !seen {
		e, dataErr = dec(&decoder{}, 1)
	}
	if dataErr != nil {
		return env, nil, fmt.Errorf("decode %s: %w", eventType, dataErr)
	}
	return env, e, nil
}

// decoders maps each wire name to the decoder of its data.
var decoders = func() map[string]func([]byte) (Event, error) {
	out := map[string]func([]byte) (Event, error){}
	for typ, mk := range registry {
		if dec, ok := handDecoders[typ]; ok {
			out[typ] = dec
			continue
		}
		out[typ] = func(b []byte) (Event, error) {
			p := mk()
			if err := json.Unmarshal(b, p); err != nil {
				return nil, err
			}
			return reflect.ValueOf(p).Elem().Interface().(Event), nil
		}
	}
	return out
}()

// inPlace decodes the data of each registered type where it stands in an
// envelope being decoded.
var inPlace = func() map[string]func(*decoder, int) (Event, error) {
	out := map[string]func(*decoder, int) (Event, error){}
	for typ := range registry {
		if dec, ok := handInPlace[typ]; ok {
			out[typ] = dec
			continue
		}
		whole := decoders[typ]
		out[typ] = func(d *decoder, depth int) (Event, error) {
			raw, err := d.raw(depth)
			if err != nil {
				return nil, err
			}
			return whole(raw)
		}
	}
	return out
}()

var handInPlace = map[string]func(*decoder, int) (Event, error){
	TypeTimestampRequested:   inPlaceHand[TimestampRequested],
	TypeFilterDecided:        inPlaceHand[FilterDecided],
	TypeFilterChainDecided:   inPlaceHand[FilterChainDecided],
	TypeTimestampIssued:      inPlaceHand[TimestampIssued],
	TypeTimestampRejected:    inPlaceHand[TimestampRejected],
	TypeTimestampUndelivered: inPlaceHand[TimestampUndelivered],
	TypeTimestampForwarded:   inPlaceHand[TimestampForwarded],
}

func inPlaceHand[T any, P handDecoded[T]](d *decoder, depth int) (Event, error) {
	var v T
	if err := P(&v).decodeJSON(d, depth); err != nil {
		return nil, err
	}
	return any(v).(Event), nil
}

// handDecoded is implemented by the pointers to the event types decoded
// by hand.
type handDecoded[T any] interface {
	*T
	Event
	decodeJSON(d *decoder, depth int) error
}

func decodeHand[T any, P handDecoded[T]](b []byte) (Event, error) {
	var v T
	d := decoder{b: b}
	if err := P(&v).decodeJSON(&d, 1); err != nil {
		return nil, err
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return any(v).(Event), nil
}

var (
	envelopeFields  = newFields("type", "id", "stream", "recordedAt", "data", "metadata")
	metadataFields  = newFields("correlationId", "node", "service")
	requestedFields = newFields("serial", "service", "path", "method", "contentType", "source", "receivedAt",
		"bodySha256", "bodySize", "parsed", "hashAlgorithm", "hashedMessage", "nonce", "reqPolicy", "certReq",
		"transport", "protocol", "tlsClient")
	filterFields     = newFields("serial", "filter", "verdict", "reason", "failInfo")
	chainFields      = newFields("serial", "rule", "chain", "decisions")
	decisionFields   = newFields("filter", "verdict", "reason", "failInfo")
	issuedFields     = newFields("serial", "genTime", "policy", "signer", "token", "client", "clientAuth", "protocol", "clockSample", "clockUncertaintyNs")
	rejectedFields   = newFields("serial", "status", "failInfo", "refusal", "reason", "client", "clientAuth")
	undeliverdFields = newFields("serial", "reason")
	forwardedFields  = newFields("serial", "upstream", "httpStatus", "status", "failInfo", "response", "client", "clientAuth")
)

func (e *Envelope) decodeJSON(d *decoder, depth int) error {
	return d.object(&envelopeFields, depth, func(name string) error { return e.member(d, depth, name) })
}

func (e *Envelope) member(d *decoder, depth int, name string) error {
	switch name {
	case "type":
		return d.str(&e.Type)
	case "id":
		return d.str(&e.ID)
	case "stream":
		return d.str(&e.Stream)
	case "recordedAt":
		return d.time(&e.RecordedAt)
	case "data":
		raw, err := d.raw(depth + 1)
		e.Data = raw
		return err
	case "metadata":
		return e.Metadata.decodeJSON(d, depth+1)
	}
	return nil
}

func (m *Metadata) decodeJSON(d *decoder, depth int) error {
	return d.object(&metadataFields, depth, func(name string) error {
		switch name {
		case "correlationId":
			return d.str(&m.CorrelationID)
		case "node":
			return d.str(&m.Node)
		case "service":
			return d.str(&m.Service)
		}
		return nil
	})
}

func (e *TimestampRequested) decodeJSON(d *decoder, depth int) error {
	return d.object(&requestedFields, depth, func(name string) error {
		switch name {
		case "serial":
			return d.str(&e.Serial)
		case "service":
			return d.str(&e.Service)
		case "path":
			return d.str(&e.Path)
		case "method":
			return d.str(&e.Method)
		case "contentType":
			return d.str(&e.ContentType)
		case "source":
			return d.str(&e.Source)
		case "receivedAt":
			return d.time(&e.ReceivedAt)
		case "bodySha256":
			return d.str(&e.BodySHA256)
		case "bodySize":
			return d.int64(&e.BodySize)
		case "parsed":
			return d.bool(&e.Parsed)
		case "hashAlgorithm":
			return d.str(&e.HashAlgorithm)
		case "hashedMessage":
			return d.str(&e.HashedMessage)
		case "nonce":
			return d.str(&e.Nonce)
		case "reqPolicy":
			return d.str(&e.ReqPolicy)
		case "certReq":
			return d.bool(&e.CertReq)
		case "transport":
			return d.str(&e.Transport)
		case "protocol":
			return d.str(&e.Protocol)
		case "tlsClient":
			return d.str(&e.TLSClient)
		}
		return nil
	})
}

func (e *FilterDecided) decodeJSON(d *decoder, depth int) error {
	return d.object(&filterFields, depth, func(name string) error {
		switch name {
		case "serial":
			return d.str(&e.Serial)
		case "filter":
			return d.str(&e.Filter)
		case "verdict":
			return d.str(&e.Verdict)
		case "reason":
			return d.str(&e.Reason)
		case "failInfo":
			return d.str(&e.FailInfo)
		}
		return nil
	})
}

func (e *FilterChainDecided) decodeJSON(d *decoder, depth int) error {
	return d.object(&chainFields, depth, func(name string) error {
		switch name {
		case "serial":
			return d.str(&e.Serial)
		case "rule":
			return d.str(&e.Rule)
		case "chain":
			return d.str(&e.Chain)
		case "decisions":
			return d.array(depth+1, len(e.Decisions),
				func() {
					// Into what an earlier "decisions" left beyond the
					// length, as encoding/json does.
					if len(e.Decisions) < cap(e.Decisions) {
						e.Decisions = e.Decisions[:len(e.Decisions)+1]
					} else {
						e.Decisions = append(e.Decisions, FilterDecision{})
					}
				},
				func(n int) {
					if n < 0 {
						e.Decisions = nil
					} else if n == 0 {
						e.Decisions = []FilterDecision{}
					} else {
						e.Decisions = e.Decisions[:n]
					}
				},
				func(i int) error { return e.Decisions[i].decodeJSON(d, depth+2) })
		}
		return nil
	})
}

func (e *FilterDecision) decodeJSON(d *decoder, depth int) error {
	return d.object(&decisionFields, depth, func(name string) error {
		switch name {
		case "filter":
			return d.str(&e.Filter)
		case "verdict":
			return d.str(&e.Verdict)
		case "reason":
			return d.str(&e.Reason)
		case "failInfo":
			return d.str(&e.FailInfo)
		}
		return nil
	})
}

func (e *TimestampIssued) decodeJSON(d *decoder, depth int) error {
	return d.object(&issuedFields, depth, func(name string) error {
		switch name {
		case "serial":
			return d.str(&e.Serial)
		case "genTime":
			return d.time(&e.GenTime)
		case "policy":
			return d.str(&e.Policy)
		case "signer":
			return d.str(&e.Signer)
		case "token":
			return d.bytes(&e.Token)
		case "client":
			return d.str(&e.Client)
		case "clientAuth":
			return d.str(&e.ClientAuth)
		case "protocol":
			return d.str(&e.Protocol)
		case "clockSample":
			return d.str(&e.ClockSample)
		case "clockUncertaintyNs":
			return d.int64(&e.ClockUncertaintyNs)
		}
		return nil
	})
}

func (e *TimestampRejected) decodeJSON(d *decoder, depth int) error {
	return d.object(&rejectedFields, depth, func(name string) error {
		switch name {
		case "serial":
			return d.str(&e.Serial)
		case "status":
			return d.str(&e.Status)
		case "failInfo":
			return d.str(&e.FailInfo)
		case "refusal":
			return d.str(&e.Refusal)
		case "reason":
			return d.str(&e.Reason)
		case "client":
			return d.str(&e.Client)
		case "clientAuth":
			return d.str(&e.ClientAuth)
		}
		return nil
	})
}

func (e *TimestampUndelivered) decodeJSON(d *decoder, depth int) error {
	return d.object(&undeliverdFields, depth, func(name string) error {
		switch name {
		case "serial":
			return d.str(&e.Serial)
		case "reason":
			return d.str(&e.Reason)
		}
		return nil
	})
}

func (e *TimestampForwarded) decodeJSON(d *decoder, depth int) error {
	return d.object(&forwardedFields, depth, func(name string) error {
		switch name {
		case "serial":
			return d.str(&e.Serial)
		case "upstream":
			return d.str(&e.Upstream)
		case "httpStatus":
			return d.int(&e.UpstreamStatus)
		case "status":
			return d.str(&e.Status)
		case "failInfo":
			return d.str(&e.FailInfo)
		case "response":
			return d.bytes(&e.Response)
		case "client":
			return d.str(&e.Client)
		case "clientAuth":
			return d.str(&e.ClientAuth)
		}
		return nil
	})
}
