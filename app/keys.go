package app

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/signer/pkcs11"
	"github.com/chronolog/chronolog/adapters/signer/softkey"
	"github.com/chronolog/chronolog/app/hsmkey"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/renewal"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsacert"
)

// serviceKey is a service's signing key with its certificate and chain,
// wherever the key lives.
type serviceKey struct {
	signer crypto.Signer
	cert   *x509.Certificate
	chain  []*x509.Certificate
	// hsm is the HSM key, nil for a key file.
	hsm *pkcs11.Key
	// activated is what the record says of the key at this start.
	activated events.SigningKeyActivated
}

func (k *serviceKey) fingerprint() string {
	sum := sha256.Sum256(k.cert.Raw)
	return hex.EncodeToString(sum[:])
}

func (k *serviceKey) Close() error {
	if k.hsm != nil {
		return k.hsm.Close()
	}
	return nil
}

// loadServiceKey opens a service's key and checks its certificate as a
// strict client would (RFC 3161 §2.3 EKU, key match, validity, and the
// chain up to its last certificate). A key in an HSM is activated with
// its PIN here; its outages are recorded through w.
func loadServiceKey(sc config.Service, w Wiring) (*serviceKey, error) {
	if sc.Signer.PKCS11 == nil {
		soft, err := softkey.Load(softkey.Config{KeyFile: sc.Signer.Key, CertFile: sc.Signer.Cert, ChainFile: sc.Signer.Chain}, w.Now)
		if err != nil {
			return nil, err
		}
		k := &serviceKey{signer: soft.Signer(), cert: soft.Certificate(), chain: soft.Chain()}
		// softkey.Load has checked the certificate and its chain.
		if err := refuseRetired(w, k.signer.Public()); err != nil {
			return nil, err
		}
		k.activated = activation(sc.Name, k, nil)
		return k, nil
	}
	p := sc.Signer.PKCS11
	watch := &outageRecorder{w: w, service: sc.Name, purpose: "tsa", token: p.Token, label: p.Key}
	hk, err := hsmkey.Open(p, watch.observe)
	if err != nil {
		return nil, err
	}
	k := &serviceKey{signer: hk, hsm: hk}
	fail := func(err error) (*serviceKey, error) {
		hk.Close()
		return nil, err
	}
	watch.setFingerprint(hsmkey.PublicKeySHA256(hk.Public()))
	if err := refuseRetired(w, hk.Public()); err != nil {
		return fail(err)
	}
	if sc.Signer.Cert != "" {
		certs, err := softkey.ReadCertificates(sc.Signer.Cert)
		if err != nil {
			return fail(err)
		}
		k.cert = certs[0]
	} else if k.cert, err = hk.Certificate(); err != nil {
		return fail(fmt.Errorf("no cert file is configured and the token holds none for the key: %w", err))
	}
	if sc.Signer.Chain != "" {
		if k.chain, err = softkey.ReadCertificates(sc.Signer.Chain); err != nil {
			return fail(err)
		}
		// A chain file that starts with the TSA certificate itself (a
		// full bundle) is taken as the issuers after it, as for key files.
		if len(k.chain) > 0 && k.chain[0].Equal(k.cert) {
			k.chain = k.chain[1:]
		}
	}
	if err := tsacert.Check(k.cert, hk.Public(), k.chain, w.Now); err != nil {
		return fail(err)
	}
	k.activated = activation(sc.Name, k, p)
	return k, nil
}

// activation is the SigningKeyActivated event of a service key.
func activation(service string, k *serviceKey, p *config.PKCS11) events.SigningKeyActivated {
	e := events.SigningKeyActivated{
		Service:           service,
		Purpose:           "tsa",
		KeyType:           string(pkcs11.KeyTypeOf(k.signer.Public())),
		PublicKeySHA256:   hsmkey.PublicKeySHA256(k.signer.Public()),
		CertificateSHA256: k.fingerprint(),
		Subject:           k.cert.Subject.String(),
		Issuer:            k.cert.Issuer.String(),
		SerialNumber:      k.cert.SerialNumber.Text(16),
		NotAfter:          k.cert.NotAfter.UTC(),
	}
	if p != nil {
		e.Token, e.Module, e.Sessions = p.Token, p.Module, k.hsm.Sessions()
		e.KeyLabel, e.KeyID = k.hsm.Label(), hex.EncodeToString(k.hsm.ID())
	}
	return e
}

// expiring warns of a certificate that expires within the configured
// number of days, and returns the event that records the warning.
func expiring(service string, k *serviceKey, w Wiring, days int) (events.Event, bool) {
	left, soon := tsacert.ExpiresWithin(k.cert, w.Now, days)
	if !soon {
		return nil, false
	}
	w.Log.Warn("TSA certificate expires soon", "service", service, "notAfter", k.cert.NotAfter.UTC(), "daysLeft", left)
	return events.SigningCertificateExpiring{
		Service: service, CertificateSHA256: k.fingerprint(), Subject: k.cert.Subject.String(),
		NotAfter: k.cert.NotAfter.UTC(), DaysLeft: left, WarnDays: days,
	}, true
}

// renewalCatalog is the algorithm catalogue the renewal-due read model
// judges tokens by, read once.
var renewalCatalog = sync.OnceValues(renewal.Load)

// endedAlgorithms warns of the algorithms a service is configured with
// that the renewal catalogue dates as ended (a hash the allow-list
// accepts, the signature its key makes), and returns the events that
// record the warnings: the service runs, but its tokens lose their value
// the moment they are made.
func endedAlgorithms(service string, hashes []rfc3161.HashAlgorithm, k *serviceKey, w Wiring) []events.Event {
	c, err := renewalCatalog()
	if err != nil {
		w.Log.Error("renewal catalogue unreadable: algorithms not checked", "service", service, "err", err)
		return nil
	}
	if len(hashes) == 0 {
		hashes = rfc3161.DefaultHashes()
	}
	names := make([]string, len(hashes))
	for i, h := range hashes {
		names[i] = h.Name
	}
	var out []events.Event
	for _, e := range c.EndedAt(w.Now, names, string(pkcs11.KeyTypeOf(k.signer.Public()))) {
		w.Log.Warn("the renewal catalogue dates an algorithm of this service as ended: its tokens are due for renewal when made",
			"service", service, "use", e.Use, "algorithm", e.Algorithm, "lastValid", e.LastValid, "catalog", c.Version())
		out = append(out, events.ServiceAlgorithmEnded{Service: service, Use: e.Use, Algorithm: e.Algorithm,
			LastValid: e.LastValid, Catalog: c.Version()})
	}
	return out
}

// outageRecorder records when an HSM key becomes unusable and when it is
// back. The adapter calls observe from its own goroutine.
type outageRecorder struct {
	w                                           Wiring
	service, purpose, token, label, fingerprint string

	mu    sync.Mutex
	since time.Time
}

// setFingerprint names the key once it is open; the adapter may already
// be reporting on it.
func (o *outageRecorder) setFingerprint(fp string) {
	o.mu.Lock()
	o.fingerprint = fp
	o.mu.Unlock()
}

func (o *outageRecorder) observe(c pkcs11.Change) {
	o.mu.Lock()
	now := time.Now().UTC()
	var e events.Event
	if !c.Available {
		o.since = now
		o.w.Log.Error("HSM key unavailable: requests fail with systemFailure until it is back", "service", o.service, "token", o.token, "cause", c.Cause)
		e = events.SigningKeyUnavailable{Service: o.service, Purpose: o.purpose, Token: o.token, KeyLabel: o.label,
			PublicKeySHA256: o.fingerprint, Cause: c.Cause, Since: now}
	} else {
		since := o.since
		if since.IsZero() {
			since = now
		}
		o.w.Log.Info("HSM key available again", "service", o.service, "token", o.token, "outage", now.Sub(since))
		e = events.SigningKeyRestored{Service: o.service, Purpose: o.purpose, Token: o.token, KeyLabel: o.label,
			PublicKeySHA256: o.fingerprint, UnavailableSince: since, RestoredAt: now, DurationMs: now.Sub(since).Milliseconds()}
	}
	o.mu.Unlock()
	if err := recordEvents(context.Background(), o.w.Recorder, o.w.Node, events.KeyStream, e); err != nil {
		o.w.Log.Error("HSM key state change not recorded", "service", o.service, "err", err)
	}
}

// StreamReader reads one stream of the record.
type StreamReader interface {
	ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error)
}

// RetiredKeys reads which keys the record says were retired, by public
// key fingerprint, with the reason: a retired key never signs again,
// whatever a configuration file says.
func RetiredKeys(ctx context.Context, r StreamReader) (map[string]string, error) {
	recs, err := r.ReadStream(ctx, events.KeyStream)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the key record: %w", err)
	}
	retired := map[string]string{}
	for _, rec := range recs {
		if rec.Type != events.TypeSigningKeyRetired {
			continue
		}
		_, e, err := events.Decode(rec.Payload)
		if err != nil {
			return nil, fmt.Errorf("key record at position %d: %w", rec.Position, err)
		}
		r := e.(*events.SigningKeyRetired)
		retired[r.PublicKeySHA256] = r.Reason
	}
	return retired, nil
}

// refuseRetired fails for a key the record says was retired.
func refuseRetired(w Wiring, pub crypto.PublicKey) error {
	fp := hsmkey.PublicKeySHA256(pub)
	if reason, ok := w.Retired[fp]; ok {
		return fmt.Errorf("the key with public key sha256 %s was retired (%s): it signs no more", fp, reason)
	}
	return nil
}
