package rfc3161

import (
	"strconv"
	"strings"
)

var statusNames = map[PKIStatus]string{
	Granted: "granted", GrantedWithMods: "grantedWithMods", Rejected: "rejection",
	Waiting: "waiting", RevocationWarning: "revocationWarning", RevocationNotification: "revocationNotification",
}

// Describe says what an answer's PKIStatusInfo says, for a client's
// message: the status by its RFC 3161 name, the failInfo, the statusString.
func (r *TimeStampResp) Describe() string {
	s := statusNames[r.Status]
	if s == "" {
		s = "status " + strconv.Itoa(int(r.Status))
	}
	if r.FailInfo != nil {
		s += " (" + r.FailInfo.String() + ")"
	}
	if len(r.StatusString) > 0 {
		s += ": " + strings.Join(r.StatusString, "; ")
	}
	return s
}
