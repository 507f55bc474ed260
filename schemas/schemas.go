// Package schemas holds the JSON Schemas of Chronolog's events and checks
// stored events against them.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed events/*.json
var files embed.FS

const base = "https://chronolog.dev/schemas/events/"

var (
	once     sync.Once
	compiled map[string]*jsonschema.Schema
	loadErr  error
)

func load() {
	compiled = map[string]*jsonschema.Schema{}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	names := EventSchemaNames()
	for _, n := range append(names, "envelope.v1") {
		raw, err := files.ReadFile("events/" + n + ".json")
		if err != nil {
			loadErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			loadErr = fmt.Errorf("schema %s: %w", n, err)
			return
		}
		if err := c.AddResource(base+n+".json", doc); err != nil {
			loadErr = err
			return
		}
	}
	for _, n := range append(names, "envelope.v1") {
		s, err := c.Compile(base + n + ".json")
		if err != nil {
			loadErr = fmt.Errorf("compile %s: %w", n, err)
			return
		}
		compiled[n] = s
	}
}

// EventSchemaNames lists the event wire names that have a schema.
func EventSchemaNames() []string {
	entries, _ := files.ReadDir("events")
	var out []string
	for _, e := range entries {
		n := strings.TrimSuffix(e.Name(), path.Ext(e.Name()))
		if n != "envelope.v1" {
			out = append(out, n)
		}
	}
	return out
}

// ValidateEvent checks a stored envelope and its data against their schemas.
func ValidateEvent(payload []byte) error {
	once.Do(load)
	if loadErr != nil {
		return loadErr
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("event is not JSON: %w", err)
	}
	if err := compiled["envelope.v1"].Validate(inst); err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	var env struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(payload, &env); err != nil {
		return err
	}
	s, ok := compiled[env.Type]
	if !ok {
		return fmt.Errorf("no schema for event type %q", env.Type)
	}
	data, err := jsonschema.UnmarshalJSON(bytes.NewReader(env.Data))
	if err != nil {
		return err
	}
	if err := s.Validate(data); err != nil {
		return fmt.Errorf("%s: %w", env.Type, err)
	}
	return nil
}
