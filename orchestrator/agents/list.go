package agents

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// ParseList reads a list of agents as a fleet's output gives it: a JSON
// list of URLs or of {"name", "url"} objects, a JSON object from names to
// URLs (in its order), or URLs separated by commas or white space. An agent
// without a name is named by its URL's host:port. Every URL must be
// http://HOST:PORT or https://HOST:PORT.
func ParseList(s string) ([]Endpoint, error) {
	s = strings.TrimSpace(s)
	var eps []Endpoint
	switch {
	case s == "":
		return nil, nil
	case strings.HasPrefix(s, "["):
		var raw []json.RawMessage
		if err := json.Unmarshal([]byte(s), &raw); err != nil {
			return nil, fmt.Errorf("agent list: %w", err)
		}
		for i, r := range raw {
			var u string
			if json.Unmarshal(r, &u) == nil {
				eps = append(eps, Endpoint{URL: u})
				continue
			}
			var e struct{ Name, URL string }
			if err := json.Unmarshal(r, &e); err != nil || e.URL == "" {
				return nil, fmt.Errorf("agent list [%d]: want a URL or {\"name\": ..., \"url\": ...}", i)
			}
			eps = append(eps, Endpoint{Name: e.Name, URL: e.URL})
		}
	case strings.HasPrefix(s, "{"):
		// A JSON object, read in order.
		dec := json.NewDecoder(bytes.NewReader([]byte(s)))
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("agent list: %w", err)
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("agent list: %w", err)
			}
			var u string
			if err := dec.Decode(&u); err != nil {
				return nil, fmt.Errorf("agent list %v: want a URL: %w", k, err)
			}
			eps = append(eps, Endpoint{Name: fmt.Sprint(k), URL: u})
		}
	default:
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
			eps = append(eps, Endpoint{URL: f})
		}
	}
	for i := range eps {
		eps[i].URL = strings.TrimSpace(eps[i].URL)
		u, err := url.Parse(eps[i].URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Port() == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("agent %q: an agent's address is http://HOST:PORT or https://HOST:PORT", eps[i].URL)
		}
		eps[i].URL = u.Scheme + "://" + u.Host
		if eps[i].Name == "" {
			eps[i].Name = u.Host
		}
	}
	return eps, nil
}
