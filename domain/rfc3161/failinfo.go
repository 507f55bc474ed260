package rfc3161

import (
	"errors"
	"fmt"
)

// FailInfo is a PKIFailureInfo bit number (RFC 3161 §2.4.2).
type FailInfo int

const (
	BadAlg              FailInfo = 0
	BadRequest          FailInfo = 2
	BadDataFormat       FailInfo = 5
	TimeNotAvailable    FailInfo = 14
	UnacceptedPolicy    FailInfo = 15
	UnacceptedExtension FailInfo = 16
	AddInfoNotAvailable FailInfo = 17
	SystemFailure       FailInfo = 25
)

var failNames = map[FailInfo]string{
	BadAlg: "badAlg", BadRequest: "badRequest", BadDataFormat: "badDataFormat",
	TimeNotAvailable: "timeNotAvailable", UnacceptedPolicy: "unacceptedPolicy",
	UnacceptedExtension: "unacceptedExtension", AddInfoNotAvailable: "addInfoNotAvailable",
	SystemFailure: "systemFailure",
}

func (f FailInfo) String() string {
	if n, ok := failNames[f]; ok {
		return n
	}
	return fmt.Sprintf("failInfo(%d)", int(f))
}

// failTexts are the statusString a client reads for each failInfo when
// nothing more precise was chosen: RFC 3161 §2.4.2's own descriptions.
var failTexts = map[FailInfo]string{
	BadAlg:              "unrecognized or unsupported algorithm identifier",
	BadRequest:          "transaction not permitted or supported",
	BadDataFormat:       "the data submitted has the wrong format",
	TimeNotAvailable:    "the TSA's time source is not available",
	UnacceptedPolicy:    "the requested TSA policy is not supported by the TSA",
	UnacceptedExtension: "the requested extension is not supported by the TSA",
	AddInfoNotAvailable: "the additional information requested could not be understood or is not available",
	SystemFailure:       "the request cannot be handled due to system failure",
}

// Text is the fixed statusString for f.
func (f FailInfo) Text() string {
	if t, ok := failTexts[f]; ok {
		return t
	}
	return failTexts[SystemFailure]
}

// Rejection is a refusal the client is told about: it becomes a
// TimeStampResp with status rejection and this failInfo.
//
// Reason is the cause, for the record and the operator's log: it may
// name addresses, clients, sources and errors, and never leaves the
// server. Text is what the client reads in statusString: short and fixed
// for its cause, and FailInfo's own text when empty.
type Rejection struct {
	FailInfo FailInfo
	Reason   string
	Text     string
}

func (r *Rejection) Error() string { return r.FailInfo.String() + ": " + r.Reason }

// ClientText is the statusString the client gets.
func (r *Rejection) ClientText() string {
	if r.Text != "" {
		return r.Text
	}
	return r.FailInfo.Text()
}

// Reject builds a Rejection.
func Reject(f FailInfo, format string, args ...any) *Rejection {
	return &Rejection{FailInfo: f, Reason: fmt.Sprintf(format, args...)}
}

// AsRejection maps any error to the Rejection the client gets: a
// Rejection stays itself; anything else is systemFailure.
func AsRejection(err error) *Rejection {
	var r *Rejection
	if errors.As(err, &r) {
		return r
	}
	return &Rejection{FailInfo: SystemFailure, Reason: "internal error"}
}
