package record

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"sync"
)

// Redacted stands in for a secret (a Terraform output marked sensitive)
// wherever loadramp records or logs it.
const Redacted = "(sensitive)"

// MinScrubLength is the shortest secret Dir.Redact scrubs from free text:
// replacing every "1" or "ab" in events.log would hide more than it protects.
// Shorter secrets are still redacted from every structured record (run.json's
// outputs, the fleet-up event).
const MinScrubLength = 4

// RedactOutputs returns a copy of outputs with the value of every output
// named in sensitive replaced by Redacted.
func RedactOutputs(outputs map[string]string, sensitive []string) map[string]string {
	if outputs == nil {
		return nil
	}
	out := maps.Clone(outputs)
	for _, name := range sensitive {
		if _, ok := out[name]; ok {
			out[name] = Redacted
		}
	}
	return out
}

// SecretValues returns the values of the outputs named in sensitive.
func SecretValues(outputs map[string]string, sensitive []string) []string {
	var vals []string
	for _, name := range sensitive {
		if v, ok := outputs[name]; ok && v != "" {
			vals = append(vals, v)
		}
	}
	return vals
}

// Redact makes events.log replace each of values (secrets a fleet reported)
// with Redacted from now on, as written and as JSON-escaped. Values shorter
// than MinScrubLength are ignored.
func (d *Dir) Redact(values ...string) {
	d.red.add(values...)
}

// redactor replaces secrets in log lines. A nil redactor replaces nothing.
type redactor struct {
	mu   sync.RWMutex
	olds [][]byte // longest first, so a secret containing another goes whole
}

func (r *redactor) add(values ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		if len(v) < MinScrubLength {
			continue
		}
		for _, form := range jsonForms(v) {
			if !slices.ContainsFunc(r.olds, func(o []byte) bool { return bytes.Equal(o, form) }) {
				r.olds = append(r.olds, form)
			}
		}
	}
	slices.SortFunc(r.olds, func(a, b []byte) int { return len(b) - len(a) })
}

// jsonForms are the ways v can appear in a JSON log line: as is, and escaped
// the way encoding/json does (with and without HTML escaping; zerolog
// escapes like the latter).
func jsonForms(v string) [][]byte {
	forms := [][]byte{[]byte(v)}
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(v) != nil {
			continue
		}
		e := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
		e = e[1 : len(e)-1] // the quotes
		if !slices.ContainsFunc(forms, func(f []byte) bool { return bytes.Equal(f, e) }) {
			forms = append(forms, bytes.Clone(e))
		}
	}
	return forms
}

func (r *redactor) scrub(p []byte) []byte {
	if r == nil {
		return p
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, old := range r.olds {
		if bytes.Contains(p, old) {
			p = bytes.ReplaceAll(p, old, []byte(Redacted))
		}
	}
	return p
}
