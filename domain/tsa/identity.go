package tsa

import "github.com/chronolog/chronolog/domain/filter"

func identityName(c *filter.Identity) string {
	if c == nil {
		return ""
	}
	return c.Name
}

func identityMethod(c *filter.Identity) string {
	if c == nil {
		return ""
	}
	return c.Method
}
