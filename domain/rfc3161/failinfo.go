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

// Rejection is a refusal the client is told about: it becomes a
// TimeStampResp with status rejection and this failInfo.
type Rejection struct {
	FailInfo FailInfo
	Reason   string
}

func (r *Rejection) Error() string { return r.FailInfo.String() + ": " + r.Reason }

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
