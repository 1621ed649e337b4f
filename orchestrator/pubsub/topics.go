package pubsub

import (
	"strconv"
	"strings"
)

// TopicSegments turns topic names into metric name segments, in order: lower
// case, every run of other characters than a-z, 0-9 and '_' made one '_',
// "topic" for an empty name, and a name met before suffixed with its index,
// so each topic has its own. Gates name a topic's figures through them
// (pubsub.topic.<segment>.lost.ratio).
func TopicSegments(names []string) []string {
	out := make([]string, len(names))
	seen := map[string]bool{}
	for i, n := range names {
		var b strings.Builder
		under := false
		for _, c := range strings.ToLower(n) {
			if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' {
				b.WriteRune(c)
				under = false
			} else if !under {
				b.WriteByte('_')
				under = true
			}
		}
		s := strings.Trim(b.String(), "_")
		if s == "" {
			s = "topic"
		}
		if seen[s] {
			s += "_" + strconv.Itoa(i)
		}
		seen[s] = true
		out[i] = s
	}
	return out
}
