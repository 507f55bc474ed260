package events

import "time"

// Wire names of the signing key lifecycle events.
const (
	TypeSigningKeyGenerated        = "SigningKeyGenerated.v1"
	TypeCertificateImported        = "CertificateImported.v1"
	TypeSigningKeyActivated        = "SigningKeyActivated.v1"
	TypeSigningKeyRetired          = "SigningKeyRetired.v1"
	TypeSigningKeyUnavailable      = "SigningKeyUnavailable.v1"
	TypeSigningKeyRestored         = "SigningKeyRestored.v1"
	TypeSigningCertificateExpiring = "SigningCertificateExpiring.v1"
)

// KeyStream holds the history of the TSA's signing keys: an auditor learns
// from it which key signed when, and for how long a key was out of reach.
const KeyStream = "tsa-keys"

// Purposes of a signing key: a timestamp service's key signs tokens, the
// log key signs the transparency log's checkpoints.
const (
	KeyPurposeTSA = "tsa"
	KeyPurposeLog = "log"
)

// Key types, as named in the key events. A key activated from elsewhere
// (a key file, a key generated outside Chronolog) may be of another size.
const (
	KeyTypeECDSAP256 = "ecdsa-p256"
	KeyTypeECDSAP384 = "ecdsa-p384"
	KeyTypeRSA2048   = "rsa-2048"
	KeyTypeRSA3072   = "rsa-3072"
	KeyTypeRSA4096   = "rsa-4096"
	KeyTypeEd25519   = "ed25519"
)

// KeyAttributes are a PKCS#11 private key's attributes as read back from
// the token after generation, not as requested: a token may ignore a
// template, and only what it reports says whether the key can leave it.
type KeyAttributes struct {
	// Extractable is CKA_EXTRACTABLE: the key may be wrapped out of the token.
	Extractable bool `json:"extractable"`
	// Sensitive is CKA_SENSITIVE: the key's value is never revealed in clear.
	Sensitive bool `json:"sensitive"`
	// Sign is CKA_SIGN.
	Sign bool `json:"sign"`
	// Decrypt is CKA_DECRYPT; a signing key should not decrypt.
	Decrypt bool `json:"decrypt"`
	// Unwrap is CKA_UNWRAP; a signing key should not unwrap other keys.
	Unwrap bool `json:"unwrap"`
	// Derive is CKA_DERIVE; a signing key should not derive other keys.
	Derive bool `json:"derive"`
}

// SigningKeyGenerated records a key pair generated in an HSM.
type SigningKeyGenerated struct {
	// Token is the label of the PKCS#11 token holding the key.
	Token string `json:"token"`
	// KeyLabel and KeyID are the key's CKA_LABEL and CKA_ID (hex).
	KeyLabel string `json:"keyLabel"`
	KeyID    string `json:"keyId"`
	// KeyType is one of the KeyType constants.
	KeyType string `json:"keyType"`
	// PublicKey is the DER SubjectPublicKeyInfo (base64 in JSON).
	PublicKey []byte `json:"publicKey"`
	// PublicKeySHA256 is the hex SHA-256 of PublicKey: the fingerprint
	// every later key event names the key by.
	PublicKeySHA256 string `json:"publicKeySha256"`
	// Attributes are the private key's attributes as the token reports them.
	Attributes KeyAttributes `json:"attributes"`
	// Operator is who asked for the key, when known.
	Operator string `json:"operator,omitempty"`
	// Module is the path of the PKCS#11 library used.
	Module string `json:"module,omitempty"`
}

func (SigningKeyGenerated) EventType() string { return TypeSigningKeyGenerated }

// CertificateImported records a certificate stored on a token next to the
// key it certifies.
type CertificateImported struct {
	// Token is the token's label; KeyLabel and KeyID (hex) name the key.
	Token    string `json:"token"`
	KeyLabel string `json:"keyLabel"`
	KeyID    string `json:"keyId"`
	// Certificate is the DER certificate (base64 in JSON).
	Certificate []byte `json:"certificate"`
	// CertificateSHA256 is the hex SHA-256 of Certificate, the value
	// TimestampIssued.signer names it by.
	CertificateSHA256 string `json:"certificateSha256"`
	// Subject and Issuer are the certificate's distinguished names.
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	// SerialNumber is the certificate's serial, hex.
	SerialNumber string `json:"serialNumber"`
	// NotBefore and NotAfter bound the certificate's validity.
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// PublicKeySHA256 is the fingerprint of the certified key, so the
	// certificate is tied to SigningKeyGenerated.
	PublicKeySHA256 string `json:"publicKeySha256"`
	// Operator is who imported the certificate, when known.
	Operator string `json:"operator,omitempty"`
}

func (CertificateImported) EventType() string { return TypeCertificateImported }

// SigningKeyActivated records a key put to use by a timestamp service or
// the log at a server start, so the record says which key signed from
// then on even when the configuration file is gone.
type SigningKeyActivated struct {
	// Service is the timestamp service; empty for the log key.
	Service string `json:"service,omitempty"`
	// Purpose is KeyPurposeTSA or KeyPurposeLog.
	Purpose string `json:"purpose"`
	// Token, KeyLabel and KeyID (hex) locate an HSM key; they are empty
	// for a key read from a file.
	Token    string `json:"token,omitempty"`
	KeyLabel string `json:"keyLabel,omitempty"`
	KeyID    string `json:"keyId,omitempty"`
	// KeyType names the key's algorithm and size (ecdsa-p256, rsa-3072, …).
	KeyType string `json:"keyType"`
	// PublicKeySHA256 is the key's fingerprint.
	PublicKeySHA256 string `json:"publicKeySha256"`
	// CertificateSHA256 is the hex SHA-256 of the certificate the service
	// signs with; the log key has none.
	CertificateSHA256 string `json:"certificateSha256,omitempty"`
	// Subject, Issuer, SerialNumber (hex) and NotAfter describe that
	// certificate.
	Subject      string    `json:"subject,omitempty"`
	Issuer       string    `json:"issuer,omitempty"`
	SerialNumber string    `json:"serialNumber,omitempty"`
	NotAfter     time.Time `json:"notAfter,omitzero"`
	// Module is the path of the PKCS#11 library; empty for a key file.
	Module string `json:"module,omitempty"`
	// Sessions is how many PKCS#11 sessions the key signs through.
	Sessions int `json:"sessions,omitempty"`
}

func (SigningKeyActivated) EventType() string { return TypeSigningKeyActivated }

// SigningKeyRetired records a key taken out of use for good.
type SigningKeyRetired struct {
	// Token is the token's label; KeyLabel and KeyID (hex) name the key.
	Token    string `json:"token"`
	KeyLabel string `json:"keyLabel"`
	KeyID    string `json:"keyId"`
	// PublicKeySHA256 is the key's fingerprint.
	PublicKeySHA256 string `json:"publicKeySha256"`
	// Reason says why, in the operator's words.
	Reason string `json:"reason"`
	// Operator is who retired the key, when known.
	Operator string `json:"operator,omitempty"`
}

func (SigningKeyRetired) EventType() string { return TypeSigningKeyRetired }

// SigningKeyUnavailable records an HSM key that stopped signing: from
// Since on, the service answers systemFailure until SigningKeyRestored.
type SigningKeyUnavailable struct {
	// Service is the timestamp service; empty for the log key.
	Service string `json:"service,omitempty"`
	// Purpose is KeyPurposeTSA or KeyPurposeLog.
	Purpose string `json:"purpose"`
	// Token is the token's label; KeyLabel the key's, empty when the key
	// was configured by its id.
	Token    string `json:"token"`
	KeyLabel string `json:"keyLabel"`
	// PublicKeySHA256 is the key's fingerprint.
	PublicKeySHA256 string `json:"publicKeySha256"`
	// Cause is the device's error, as reported.
	Cause string `json:"cause"`
	// Since is when the first signature failed.
	Since time.Time `json:"since"`
}

func (SigningKeyUnavailable) EventType() string { return TypeSigningKeyUnavailable }

// SigningKeyRestored records an HSM key signing again after an outage.
type SigningKeyRestored struct {
	// Service is the timestamp service; empty for the log key.
	Service string `json:"service,omitempty"`
	// Purpose is KeyPurposeTSA or KeyPurposeLog.
	Purpose string `json:"purpose"`
	// Token is the token's label; KeyLabel the key's, empty when the key
	// was configured by its id.
	Token    string `json:"token"`
	KeyLabel string `json:"keyLabel"`
	// PublicKeySHA256 is the key's fingerprint.
	PublicKeySHA256 string `json:"publicKeySha256"`
	// UnavailableSince is the Since of the matching SigningKeyUnavailable;
	// RestoredAt when a signature succeeded again.
	UnavailableSince time.Time `json:"unavailableSince"`
	RestoredAt       time.Time `json:"restoredAt"`
	// DurationMs is the outage in milliseconds, so a reader need not
	// subtract timestamps to total the service's downtime.
	DurationMs int64 `json:"durationMs"`
}

func (SigningKeyRestored) EventType() string { return TypeSigningKeyRestored }

// SigningCertificateExpiring records a warning that a service's TSA
// certificate expires within the configured number of days: once it has,
// the service cannot start.
type SigningCertificateExpiring struct {
	// Service is the timestamp service.
	Service string `json:"service"`
	// CertificateSHA256 is the hex SHA-256 of the certificate's DER.
	CertificateSHA256 string `json:"certificateSha256"`
	// Subject is the certificate's distinguished name.
	Subject string `json:"subject"`
	// NotAfter is the end of the certificate's validity.
	NotAfter time.Time `json:"notAfter"`
	// DaysLeft is the number of whole days until NotAfter, WarnDays the
	// threshold that raised the warning.
	DaysLeft int `json:"daysLeft"`
	WarnDays int `json:"warnDays"`
}

func (SigningCertificateExpiring) EventType() string { return TypeSigningCertificateExpiring }
