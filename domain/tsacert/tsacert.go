// Package tsacert decides whether a TSA certificate is fit to sign
// timestamps with: what a strict client checks of the certificate
// (RFC 3161 §2.3), of the key pair, and of the chain sent with the tokens.
// A server that signs with an unfit certificate issues tokens its clients
// refuse, so it is checked before a service starts. The time is handed in.
package tsacert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"
)

var oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}

// Check reports every reason cert, the certificate of the TSA key pub,
// is unfit at now, joined in one error (nil when there is none):
//
//   - the certificate's public key is pub;
//   - its extendedKeyUsage is present, critical, and timeStamping alone;
//   - its keyUsage, if present, allows digitalSignature or
//     contentCommitment;
//   - now lies within its validity;
//   - chain, when given, runs from cert's issuer upwards: chain[0] issued
//     cert and chain[i+1] issued chain[i] (names match, signatures
//     verify), each issuer is a CA allowed to sign certificates and to
//     certify timeStamping, each is valid at now; a self-signed last
//     certificate's own signature verifies.
//
// The chain need not end in a root: whoever relies on the tokens chooses
// their trust anchors; this checks that what is sent holds together.
func Check(cert *x509.Certificate, pub crypto.PublicKey, chain []*x509.Certificate, now time.Time) error {
	if cert == nil {
		return errors.New("no TSA certificate")
	}
	var problems []error
	problems = append(problems, checkLeaf(cert, pub, now)...)
	problems = append(problems, checkChain(cert, chain, now)...)
	return errors.Join(problems...)
}

// checkLeaf keeps the messages adapters/signer/softkey.CheckTSACertificate
// gives, so operators see the same words whichever check refused.
func checkLeaf(cert *x509.Certificate, pub crypto.PublicKey, now time.Time) []error {
	var problems []error
	if want, err := x509.MarshalPKIXPublicKey(pub); err != nil {
		problems = append(problems, fmt.Errorf("TSA public key: %w", err))
	} else if got, _ := x509.MarshalPKIXPublicKey(cert.PublicKey); !bytes.Equal(got, want) {
		problems = append(problems, errors.New("the certificate's public key does not match the TSA private key"))
	}
	var eku *struct{ critical bool }
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidExtKeyUsage) {
			eku = &struct{ critical bool }{e.Critical}
		}
	}
	switch {
	case eku == nil:
		problems = append(problems, errors.New("the certificate has no extendedKeyUsage: a TSA certificate needs timeStamping, critical"))
	case !eku.critical:
		problems = append(problems, errors.New("the certificate's extendedKeyUsage is not critical (RFC 3161 §2.3)"))
	}
	// Checked even when the extension is not critical, so a certificate
	// with two faults names both.
	if eku != nil && (len(cert.UnknownExtKeyUsage) != 0 || len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping) {
		problems = append(problems, errors.New("timeStamping must be the certificate's only extendedKeyUsage (RFC 3161 §2.3)"))
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		problems = append(problems, errors.New("the certificate's keyUsage allows neither digitalSignature nor contentCommitment"))
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		problems = append(problems, fmt.Errorf("the certificate is valid from %s to %s, not now (%s)", cert.NotBefore.UTC(), cert.NotAfter.UTC(), now.UTC()))
	}
	return problems
}

func checkChain(cert *x509.Certificate, chain []*x509.Certificate, now time.Time) []error {
	var problems []error
	child, childName := cert, "the TSA certificate"
	for i, ca := range chain {
		name := fmt.Sprintf("chain[%d] (%s)", i, subjectOf(ca))
		if ca == nil {
			problems = append(problems, fmt.Errorf("chain[%d] is missing", i))
			break
		}
		if i == 0 && bytes.Equal(ca.Raw, cert.Raw) {
			problems = append(problems, errors.New("chain[0] is the TSA certificate itself: the chain starts with its issuer"))
			child, childName = ca, name
			continue
		}
		// A name mismatch says the order or the set is wrong; the
		// signature then cannot be expected to verify, and saying so
		// too would only add noise.
		if !bytes.Equal(child.RawIssuer, ca.RawSubject) {
			problems = append(problems, fmt.Errorf("%s did not issue %s, whose issuer is %s", name, childName, issuerOf(child)))
		} else if err := ca.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature); err != nil {
			problems = append(problems, fmt.Errorf("the signature of %s does not verify with the key of %s: %w", childName, name, err))
		}
		if !ca.BasicConstraintsValid || !ca.IsCA {
			problems = append(problems, fmt.Errorf("%s is not a CA (basicConstraints cA is not set)", name))
		} else if limited := ca.MaxPathLen > 0 || ca.MaxPathLenZero; limited && i > ca.MaxPathLen {
			// i is the number of CAs between this one and the TSA
			// certificate.
			problems = append(problems, fmt.Errorf("%s allows %d CAs below it (pathLenConstraint), the chain has %d", name, ca.MaxPathLen, i))
		}
		if ca.KeyUsage != 0 && ca.KeyUsage&x509.KeyUsageCertSign == 0 {
			problems = append(problems, fmt.Errorf("%s's keyUsage does not allow keyCertSign", name))
		}
		if !certifiesTimeStamping(ca) {
			problems = append(problems, fmt.Errorf("%s's extendedKeyUsage does not include timeStamping, so it may not certify a TSA", name))
		}
		switch {
		case now.Before(ca.NotBefore):
			problems = append(problems, fmt.Errorf("%s is not valid before %s (now %s)", name, ca.NotBefore.UTC(), now.UTC()))
		case now.After(ca.NotAfter):
			problems = append(problems, fmt.Errorf("%s expired on %s (now %s)", name, ca.NotAfter.UTC(), now.UTC()))
		}
		child, childName = ca, name
	}
	if n := len(chain); n > 0 && chain[n-1] != nil && selfSigned(chain[n-1]) {
		last := chain[n-1]
		if err := checkSelfSignature(last); err != nil {
			problems = append(problems, fmt.Errorf("the self-signature of chain[%d] (%s) does not verify: %w", n-1, subjectOf(last), err))
		}
	}
	return problems
}

// checkSelfSignature verifies a root's signature over itself. A SHA-1
// self-signature is verified rather than refused as x509 refuses it: a
// root is trusted because it was handed over, not for its signature, and
// strict verifiers accept old roots signed so.
func checkSelfSignature(c *x509.Certificate) error {
	err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	var insecure x509.InsecureAlgorithmError
	if !errors.As(err, &insecure) {
		return err
	}
	digest := sha1.Sum(c.RawTBSCertificate)
	switch pub := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if c.SignatureAlgorithm == x509.SHA1WithRSA {
			return rsa.VerifyPKCS1v15(pub, crypto.SHA1, digest[:], c.Signature)
		}
	case *ecdsa.PublicKey:
		if c.SignatureAlgorithm == x509.ECDSAWithSHA1 {
			if !ecdsa.VerifyASN1(pub, digest[:], c.Signature) {
				return errors.New("ECDSA verification failure")
			}
			return nil
		}
	}
	return err
}

// certifiesTimeStamping follows the EKU nesting strict verifiers (Go's
// x509.Verify among them) apply: a CA that restricts its extended key
// usages restricts what it may certify.
func certifiesTimeStamping(ca *x509.Certificate) bool {
	if len(ca.ExtKeyUsage) == 0 && len(ca.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, u := range ca.ExtKeyUsage {
		if u == x509.ExtKeyUsageAny || u == x509.ExtKeyUsageTimeStamping {
			return true
		}
	}
	return false
}

// selfSigned tells a self-signed certificate from a merely self-issued
// one (a CA's key rollover certificate), whose key identifiers differ.
func selfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawSubject, c.RawIssuer) {
		return false
	}
	return len(c.AuthorityKeyId) == 0 || len(c.SubjectKeyId) == 0 || bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId)
}

func subjectOf(c *x509.Certificate) string {
	if c == nil {
		return "nil"
	}
	if s := c.Subject.String(); s != "" {
		return s
	}
	return "empty subject"
}

func issuerOf(c *x509.Certificate) string {
	if s := c.Issuer.String(); s != "" {
		return s
	}
	return "empty"
}

// ExpiresWithin tells how many whole days are left until cert's notAfter
// (negative once it has passed) and whether that is fewer than days: soon
// means the certificate will not last the next days days. days ≤ 0 is soon
// only for an expired certificate.
func ExpiresWithin(cert *x509.Certificate, now time.Time, days int) (daysLeft int, soon bool) {
	left := cert.NotAfter.Sub(now)
	daysLeft = int(left / (24 * time.Hour))
	// Division truncates toward zero; an expired certificate's day is
	// counted as gone, so 1h past notAfter is -1, not 0.
	if left < 0 && left%(24*time.Hour) != 0 {
		daysLeft--
	}
	return daysLeft, daysLeft < days
}
