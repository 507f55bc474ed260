package config

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Filter types a chain may list. Every chain of a service starts with the
// service's hash allow-list and policy acceptance; these come after.
const (
	FilterNonceRequired     = "nonce-required"
	FilterCertReq           = "cert-req"
	FilterRequestSize       = "request-size"
	FilterClientIP          = "client-ip"
	FilterTLSClientCert     = "tls-client-cert"
	FilterAuthorizeByName   = "authorize-by-name"
	FilterAuthorizeByAuthn  = "authorize-by-authentication"
	FilterAPIKey            = "api-key"
	FilterRateLimit         = "rate-limit"
	FilterForward           = "forward"
	filterOptionTypeKeyName = "type"
)

// FilterSpec is one filter of a chain: its type and that type's options.
type FilterSpec struct {
	Type string `yaml:"type" json:"type"`

	MinBytes          int        `yaml:"minBytes,omitempty" json:"minBytes,omitempty"`
	Max               int64      `yaml:"max,omitempty" json:"max,omitempty"`
	Allow             []string   `yaml:"allow,omitempty" json:"allow,omitempty"`
	Deny              []string   `yaml:"deny,omitempty" json:"deny,omitempty"`
	CAFile            string     `yaml:"caFile,omitempty" json:"caFile,omitempty"`
	IntermediatesFile string     `yaml:"intermediatesFile,omitempty" json:"intermediatesFile,omitempty"`
	Names             []NameRule `yaml:"names,omitempty" json:"names,omitempty"`
	Keys              []APIKey   `yaml:"keys,omitempty" json:"keys,omitempty"`
	Rate              float64    `yaml:"rate,omitempty" json:"rate,omitempty"`
	Burst             int        `yaml:"burst,omitempty" json:"burst,omitempty"`
	MaxClients        int        `yaml:"maxClients,omitempty" json:"maxClients,omitempty"`
	URL               string     `yaml:"url,omitempty" json:"url,omitempty"`
	Timeout           Duration   `yaml:"timeout,omitempty" json:"timeout,omitempty"`

	// problems found while decoding (an option the type does not take),
	// reported by Validate with the rest.
	problems []string
}

// NameRule authorizes clients whose certificate subject DN, or one of
// whose subject alternative names, matches (anchored RE2 patterns; both
// must match when both are given).
type NameRule struct {
	Subject string `yaml:"subject,omitempty" json:"subject,omitempty"`
	SAN     string `yaml:"san,omitempty" json:"san,omitempty"`
}

// APIKey is a bearer key, stored only as "sha256:<hex>" of the key.
type APIKey struct {
	Name   string `yaml:"name" json:"name"`
	SHA256 string `yaml:"sha256" json:"sha256"`
}

type filterSpecFields FilterSpec

func (f *FilterSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a filter is a mapping with a type and its options", n.Line)
	}
	var v filterSpecFields
	if err := n.Decode(&v); err != nil {
		return err
	}
	*f = FilterSpec(v)
	allowed, known := filterOptions(f.Type)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i].Value
		if key == filterOptionTypeKeyName || !known {
			continue
		}
		if !contains(allowed, key) {
			f.problems = append(f.problems, fmt.Sprintf("line %d: %s takes no option %q (it takes: %s)",
				n.Content[i].Line, f.Type, key, optionList(allowed)))
		}
	}
	return nil
}

func optionList(opts []string) string {
	if len(opts) == 0 {
		return "none"
	}
	return strings.Join(opts, ", ")
}

// filterOptions lists the options a filter type takes.
func filterOptions(typ string) ([]string, bool) {
	if typ == FilterForward {
		return []string{"url", "timeout", "caFile"}, true
	}
	k, ok := filterKinds[typ]
	return k.options, ok
}

func filterTypes() string {
	names := []string{FilterForward}
	for n := range filterKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
