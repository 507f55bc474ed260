package pkcs11

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := Config{Module: "m.so", Token: "t", KeyLabel: "k", PIN: "p"}
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"good":          {func(*Config) {}, ""},
		"by id":         {func(c *Config) { c.KeyLabel, c.KeyID = "", []byte{1} }, ""},
		"no module":     {func(c *Config) { c.Module = "" }, "no module"},
		"no token":      {func(c *Config) { c.Token = "" }, "no token label"},
		"no key":        {func(c *Config) { c.KeyLabel = "" }, "neither a key label nor a key id"},
		"both":          {func(c *Config) { c.KeyID = []byte{1} }, "give one"},
		"no PIN":        {func(c *Config) { c.PIN = "" }, "no PIN"},
		"negative pool": {func(c *Config) { c.Sessions = -1 }, "negative"},
		"negative wait": {func(c *Config) { c.Wait = -time.Second }, "negative"},
	} {
		c := good
		tc.edit(&c)
		err := c.validate()
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	if got, want := (Config{}).poolSize(), max(2, 2*runtime.GOMAXPROCS(0)); got != want {
		t.Errorf("default pool %d, want %d", got, want)
	}
	if got := (Config{Sessions: 3}).poolSize(); got != 3 {
		t.Errorf("pool of 3 is %d", got)
	}
	if got := (Config{}).wait(); got != 2*time.Second {
		t.Errorf("default wait %v", got)
	}
}
