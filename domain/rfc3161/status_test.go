package rfc3161

import "testing"

func TestDescribeStatus(t *testing.T) {
	bad := BadAlg
	for _, c := range []struct {
		r    TimeStampResp
		want string
	}{
		{TimeStampResp{Status: Granted}, "granted"},
		{TimeStampResp{Status: Rejected, FailInfo: &bad, StatusString: []string{"a", "b"}}, "rejection (badAlg): a; b"},
		{TimeStampResp{Status: 9}, "status 9"},
	} {
		if got := c.r.Describe(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
}
