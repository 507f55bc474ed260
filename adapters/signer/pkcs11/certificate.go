package pkcs11

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	p11 "github.com/miekg/pkcs11"
)

// Certificate is the X.509 certificate stored on the token with the
// key's CKA_ID and the key's public key (the newest, if several), or an
// error saying none is stored.
func (k *Key) Certificate() (*x509.Certificate, error) {
	var cert *x509.Certificate
	err := k.withSession(func(ctx *p11.Ctx, s *session) error {
		var err error
		cert, err = certificateOf(ctx, s.h, k.id, k.pub)
		return err
	})
	if errors.Is(err, errNoCertificate) {
		return nil, fmt.Errorf("pkcs11: token %q stores no certificate for key %q (id %x)", k.cfg.Token, k.label, k.id)
	}
	if err != nil {
		return nil, fmt.Errorf("pkcs11: the certificate of key %q on token %q: %w", k.label, k.cfg.Token, err)
	}
	return cert, nil
}

// ImportCertificate stores cert on the token as a CKO_CERTIFICATE with
// the key's CKA_ID and CKA_LABEL, and removes the certificates stored for
// the key before it. It refuses a certificate whose public key is not the
// key's. The key is selected by keyLabel, keyID, or both.
func ImportCertificate(module, token, pin string, keyLabel string, keyID []byte, cert *x509.Certificate) error {
	if cert == nil {
		return errors.New("pkcs11: import certificate: no certificate")
	}
	if keyLabel == "" && len(keyID) == 0 {
		return errors.New("pkcs11: import certificate: select the key by its label, its id, or both")
	}
	sel := Config{KeyLabel: keyLabel, KeyID: keyID}.selector()
	err := withToken(module, token, pin, true, func(ctx *p11.Ctx, sh p11.SessionHandle) error {
		obj, err := findPrivateKey(ctx, sh, token, keyLabel, keyID)
		if err != nil {
			return err
		}
		key, err := readIdentity(ctx, sh, obj)
		if err != nil {
			return err
		}
		if !samePublic(key.pub, cert.PublicKey) {
			return fmt.Errorf("the certificate of %q is for another key than %s", cert.Subject, sel)
		}
		if len(key.id) == 0 {
			return errors.New("the key has no CKA_ID, by which its certificate is found")
		}
		old, err := findObjects(ctx, sh, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_CERTIFICATE),
			p11.NewAttribute(p11.CKA_ID, key.id),
		})
		if err != nil {
			return fmt.Errorf("look for the key's certificates: %w", err)
		}
		serial, err := asn1.Marshal(cert.SerialNumber)
		if err != nil {
			return fmt.Errorf("the certificate's serial number: %w", err)
		}
		// The new one first: a failure leaves the old one in place.
		if _, err := ctx.CreateObject(sh, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_CERTIFICATE),
			p11.NewAttribute(p11.CKA_CERTIFICATE_TYPE, p11.CKC_X_509),
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_PRIVATE, false),
			p11.NewAttribute(p11.CKA_LABEL, key.label),
			p11.NewAttribute(p11.CKA_ID, key.id),
			p11.NewAttribute(p11.CKA_SUBJECT, cert.RawSubject),
			p11.NewAttribute(p11.CKA_ISSUER, cert.RawIssuer),
			p11.NewAttribute(p11.CKA_SERIAL_NUMBER, serial),
			p11.NewAttribute(p11.CKA_VALUE, cert.Raw),
		}); err != nil {
			return fmt.Errorf("C_CreateObject: %w", err)
		}
		for _, o := range old {
			if err := ctx.DestroyObject(sh, o); err != nil {
				return fmt.Errorf("remove the key's former certificate: C_DestroyObject: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pkcs11: import the certificate of key %s on token %q: %w", sel, token, err)
	}
	return nil
}
