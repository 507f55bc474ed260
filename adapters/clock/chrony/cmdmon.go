package chrony

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// chronyd's command and monitoring protocol (cmdmon), as candm.h of chrony
// 4.x lays it out: big-endian, a 20-byte request header and a 28-byte
// reply header, then the command's data. Only REQ_TRACKING is spoken here.
const (
	protoVersion = 6 // PROTO_VERSION_NUMBER since chrony 2.x
	pktRequest   = 1 // PKT_TYPE_CMD_REQUEST
	pktReply     = 2 // PKT_TYPE_CMD_REPLY
	reqTracking  = 33
	rpyTracking  = 5

	requestHeaderLen = 20
	replyHeaderLen   = 28
	// trackingReplyLen is the header and RPY_Tracking up to its EOR
	// marker: ref_id 4, ip_addr 20, stratum 2, leap_status 2, ref_time 12,
	// nine Floats 36.
	trackingReplyLen = replyHeaderLen + 76
	// trackingRequestLen: since protocol 6 a request is padded with zeros
	// to the length of its reply, so that chronyd cannot be used to
	// amplify traffic; it refuses a shorter one (STT_BADPKTLENGTH).
	trackingRequestLen = trackingReplyLen
)

// trackingRequest is a REQ_TRACKING packet with the given sequence number,
// which the reply echoes.
func trackingRequest(seq uint32) []byte {
	b := make([]byte, trackingRequestLen)
	b[0] = protoVersion
	b[1] = pktRequest
	binary.BigEndian.PutUint16(b[4:], reqTracking)
	// b[6:8] attempt: 0, this is the first (and only) send.
	binary.BigEndian.PutUint32(b[8:], seq)
	return b
}

// tracking is the part of chronyd's tracking report a Reading needs.
type tracking struct {
	refID   uint32
	stratum uint16
	// leap is chronyd's leap status: 0 normal, 1 insert second, 2 delete
	// second, 3 not synchronised.
	leap uint16
	// correction is chronyc's "System time": how far the system clock is
	// slow of NTP time (negative when it is fast), in seconds.
	correction     float64
	rootDelay      float64 // seconds
	rootDispersion float64 // seconds
}

// Command status codes (STT_*) chronyd may answer a tracking request
// with, and what they mean for it.
var statusText = map[uint16]string{
	1:  "failed",
	2:  "not authorised",
	3:  "invalid command",
	6:  "not enabled",
	18: "bad packet version",
	19: "bad packet length",
}

// errOtherReply marks a datagram that is not the reply to our request
// (another sequence number, another packet type): to be skipped while
// waiting for ours.
var errOtherReply = errors.New("not the reply to this request")

// parseTracking parses chronyd's reply to the tracking request numbered
// seq.
func parseTracking(b []byte, seq uint32) (tracking, error) {
	if len(b) < replyHeaderLen {
		return tracking{}, fmt.Errorf("reply of %d bytes, shorter than its %d-byte header", len(b), replyHeaderLen)
	}
	version, pktType := b[0], b[1]
	command := binary.BigEndian.Uint16(b[4:])
	reply := binary.BigEndian.Uint16(b[6:])
	status := binary.BigEndian.Uint16(b[8:])
	if pktType != pktReply || command != reqTracking || binary.BigEndian.Uint32(b[16:]) != seq {
		return tracking{}, errOtherReply
	}
	if version != protoVersion {
		return tracking{}, fmt.Errorf("chronyd speaks command protocol version %d, this client %d", version, protoVersion)
	}
	if status != 0 {
		text, ok := statusText[status]
		if !ok {
			text = "error"
		}
		return tracking{}, fmt.Errorf("chronyd refused the tracking request: %s (status %d)", text, status)
	}
	if reply != rpyTracking {
		return tracking{}, fmt.Errorf("reply type %d to a tracking request, want %d", reply, rpyTracking)
	}
	if len(b) < trackingReplyLen {
		return tracking{}, fmt.Errorf("tracking reply of %d bytes, want %d", len(b), trackingReplyLen)
	}
	d := b[replyHeaderLen:]
	// d[4:24] is the reference's IP address and d[28:40] the reference
	// time: not used.
	t := tracking{
		refID:          binary.BigEndian.Uint32(d[0:]),
		stratum:        binary.BigEndian.Uint16(d[24:]),
		leap:           binary.BigEndian.Uint16(d[26:]),
		correction:     decodeFloat(binary.BigEndian.Uint32(d[40:])),
		rootDelay:      decodeFloat(binary.BigEndian.Uint32(d[68:])),
		rootDispersion: decodeFloat(binary.BigEndian.Uint32(d[72:])),
	}
	if t.leap > 3 {
		return tracking{}, fmt.Errorf("unknown leap status %d", t.leap)
	}
	return t, nil
}

// decodeFloat decodes chrony's 32-bit Float: a 7-bit signed exponent over
// a 25-bit signed coefficient, without hidden bit, worth
// coefficient × 2^(exponent−25) (UTI_FloatNetworkToHost).
func decodeFloat(x uint32) float64 {
	exp := int(x >> 25)
	if exp >= 1<<6 {
		exp -= 1 << 7
	}
	coef := int32(x & (1<<25 - 1))
	if coef >= 1<<24 {
		coef -= 1 << 25
	}
	return math.Ldexp(float64(coef), exp-25)
}

// seconds converts a decoded Float to a Duration. Floats reach 2^87 s; a
// Duration, about 292 years.
func seconds(s float64) (time.Duration, error) {
	ns := math.Round(s * 1e9)
	if ns >= math.MaxInt64 || ns <= math.MinInt64 {
		return 0, fmt.Errorf("%g s does not fit a time.Duration", s)
	}
	return time.Duration(ns), nil
}
