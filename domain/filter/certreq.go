package filter

// CertReqForced makes every token carry the TSA certificate. Verifiers
// that were never given the certificate out of band can then check a
// token on its own, whatever the client's certReq said.
type CertReqForced struct{}

// NewCertReqForced returns the filter.
func NewCertReqForced() *CertReqForced { return &CertReqForced{} }

func (*CertReqForced) judgesQuery() {}

func (*CertReqForced) Name() string { return "cert-req" }

func (*CertReqForced) Decide(r Request) Decision {
	d := Accept("certReq false: the TSA certificate is included regardless")
	if r.Query != nil && r.Query.CertReq {
		d = Accept("certReq true: the TSA certificate is included, as asked and regardless")
	}
	d.ForceCertReq = true
	return d
}
