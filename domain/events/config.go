package events

import (
	"encoding/json"
	"time"
)

// Wire names of the service configuration events.
const (
	TypeServiceConfigured     = "ServiceConfigured.v1"
	TypeServiceConfigChanged  = "ServiceConfigChanged.v1"
	TypeServiceConfigRefused  = "ServiceConfigRefused.v1"
	TypeServiceAlgorithmEnded = "ServiceAlgorithmEnded.v1"
)

// ConfigStream holds the configuration history of the timestamp services.
const ConfigStream = "tsa-config"

// ServiceConfigured records a timestamp service as it was put into service
// when the server started.
type ServiceConfigured struct {
	Service string `json:"service"`
	// Source is the configuration file (or "flags" for a server configured
	// on its command line); FileSHA256 the hex SHA-256 of its bytes.
	Source     string `json:"source"`
	FileSHA256 string `json:"fileSha256,omitempty"`
	// ConfigSHA256 is the hex SHA-256 of Config, so a later change can name
	// what it replaced.
	ConfigSHA256 string `json:"configSha256"`
	// Certificate is the hex SHA-256 of the TSA certificate the service
	// signs with.
	Certificate string `json:"certificate"`
	// Config is the service's effective configuration (defaults filled
	// in). It holds API keys only as their digests.
	Config json.RawMessage `json:"config"`
}

func (ServiceConfigured) EventType() string { return TypeServiceConfigured }

// Kinds of ServiceConfigChanged.
const (
	ConfigAdded    = "added"
	ConfigModified = "modified"
	ConfigRemoved  = "removed"
)

// ServiceConfigChanged records a service added, modified or removed by a
// configuration reload.
type ServiceConfigChanged struct {
	Service    string `json:"service"`
	Change     string `json:"change"`
	Source     string `json:"source"`
	FileSHA256 string `json:"fileSha256,omitempty"`
	// PreviousSHA256 is the ConfigSHA256 of the configuration replaced
	// (empty when added); ConfigSHA256 and Config describe the new one
	// (empty when removed).
	PreviousSHA256 string          `json:"previousSha256,omitempty"`
	ConfigSHA256   string          `json:"configSha256,omitempty"`
	Certificate    string          `json:"certificate,omitempty"`
	Config         json.RawMessage `json:"config,omitempty"`
}

func (ServiceConfigChanged) EventType() string { return TypeServiceConfigChanged }

// ServiceConfigRefused records a reload that was refused: the running
// configuration stays, and here is why.
type ServiceConfigRefused struct {
	Source     string   `json:"source"`
	FileSHA256 string   `json:"fileSha256,omitempty"`
	Problems   []string `json:"problems"`
}

func (ServiceConfigRefused) EventType() string { return TypeServiceConfigRefused }

// Uses of an algorithm by a service, in ServiceAlgorithmEnded.
const (
	AlgorithmUseHash      = "hash"
	AlgorithmUseSignature = "signature"
)

// ServiceAlgorithmEnded records that a service was put into service (at a
// start or a reload) with an algorithm the renewal catalogue dates as
// ended: a hash its allow-list accepts for message imprints, or the
// signature its key makes. The service runs (the operator decided so),
// but every token it makes with that algorithm is due for renewal at once.
type ServiceAlgorithmEnded struct {
	Service string `json:"service"`
	// Use is hash or signature; Algorithm is named as the catalogue and
	// the other events name it (sha1, rsa-2048, …).
	Use       string `json:"use"`
	Algorithm string `json:"algorithm"`
	// LastValid is the last instant the catalogue holds it valid;
	// Catalog the catalogue's version.
	LastValid time.Time `json:"lastValid"`
	Catalog   string    `json:"catalog"`
}

func (ServiceAlgorithmEnded) EventType() string { return TypeServiceAlgorithmEnded }
