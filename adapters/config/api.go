package config

import (
	"slices"

	"github.com/chronolog/chronolog/domain/filter"
)

// API configures the read-side query API under /api/v1/.
type API struct {
	// Tokens are the bearer tokens admitted, each with its roles.
	Tokens []APIToken `yaml:"tokens,omitempty" json:"tokens,omitempty"`
}

// APIToken is a bearer token of the query API, stored only as
// "sha256:<hex>" of the token (tsactl apikey makes one).
type APIToken struct {
	Name   string   `yaml:"name" json:"name"`
	SHA256 string   `yaml:"sha256" json:"sha256"`
	Roles  []string `yaml:"roles" json:"roles"`
}

// Roles of the query API.
const (
	RoleAuditor  = "auditor"
	RoleBilling  = "billing"
	RoleOperator = "operator"
)

func (a *API) validate(p *problems) {
	names := map[string]bool{}
	for i, t := range a.Tokens {
		if t.Name == "" {
			p.add("server: api: tokens[%d]: name is empty", i)
		} else if names[t.Name] {
			p.add("server: api: tokens[%d]: name %q is listed twice", i, t.Name)
		}
		names[t.Name] = true
		if _, err := filter.ParseAPIKeyHash(t.SHA256); err != nil {
			p.add("server: api: tokens[%d] %s: sha256: %v (store the token's digest, never the token: tsactl apikey)", i, t.Name, err)
		}
		if len(t.Roles) == 0 {
			p.add("server: api: tokens[%d] %s: roles: at least one of auditor, billing, operator", i, t.Name)
		}
		for _, r := range t.Roles {
			if !slices.Contains([]string{RoleAuditor, RoleBilling, RoleOperator}, r) {
				p.add("server: api: tokens[%d] %s: role %q is not one of auditor, billing, operator", i, t.Name, r)
			}
		}
	}
}
