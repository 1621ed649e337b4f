package delivery

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Confirmation modes: when a subscription counts as live, so that every
// message published from then on must reach it.
const (
	// ConfirmNone: live once the response headers (SSE) or the WebSocket
	// handshake arrive (and the open messages are sent); the publishers wait
	// the Bus's settle time after the last subscription before they start.
	ConfirmNone = "none"
	// ConfirmComment: live once a comment line (SSE) or a message
	// (WebSocket) starting with a prefix arrives, as the bundled event bus's
	// ": subscribed topic=T".
	ConfirmComment = "comment"
	// ConfirmFirstEvent: live once the first event carrying a marker
	// arrives; before the step, warm-up messages (never counted) are
	// published until every subscription is live.
	ConfirmFirstEvent = "first-event"
)

// DefaultSettle is the wait, with confirmation none, between the last
// subscription opening and the first publish: time for the server to finish
// registering subscriptions it answered before it had.
const DefaultSettle = 500 * time.Millisecond

// DefaultSubscribeTimeout bounds the wait for a subscription to be live.
const DefaultSubscribeTimeout = 5 * time.Second

// ErrNotConfirmed is wrapped by the error of a subscription that did not
// become live in time.
var ErrNotConfirmed = errors.New("subscription not confirmed")

// Confirm is a confirmation mode.
type Confirm struct {
	Mode string
	// Prefix is what the comment or message of ConfirmComment starts with.
	Prefix string
}

// ConfirmUsage says what a confirmation may be, for error messages.
const ConfirmUsage = `use none, first-event, or comment PREFIX (for example comment ": subscribed")`

// ParseConfirm reads a confirmation: "none" (or empty), "first-event", or
// "comment PREFIX" where PREFIX is the rest of the text, or a double-quoted
// string (Go syntax) to keep leading spaces or quote escapes.
func ParseConfirm(s string) (Confirm, error) {
	t := strings.TrimSpace(s)
	switch t {
	case "", ConfirmNone:
		return Confirm{Mode: ConfirmNone}, nil
	case ConfirmFirstEvent:
		return Confirm{Mode: ConfirmFirstEvent}, nil
	}
	rest, ok := strings.CutPrefix(t, ConfirmComment)
	if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
		return Confirm{}, fmt.Errorf("confirmation %q: %s", s, ConfirmUsage)
	}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, `"`) {
		p, err := strconv.Unquote(rest)
		if err != nil {
			return Confirm{}, fmt.Errorf("confirmation %q: the prefix %s is not a complete double-quoted string", s, rest)
		}
		rest = p
	}
	if rest == "" {
		return Confirm{}, fmt.Errorf("confirmation %q: comment needs the prefix it waits for, for example comment \": subscribed\"", s)
	}
	return Confirm{Mode: ConfirmComment, Prefix: rest}, nil
}

// String writes c as ParseConfirm reads it.
func (c Confirm) String() string {
	switch c.Mode {
	case ConfirmComment:
		return ConfirmComment + " " + strconv.Quote(c.Prefix)
	case "":
		return ConfirmNone
	}
	return c.Mode
}

// Received keeps a few samples of what a subscription received before it was
// live, for the error that says it was not.
type Received struct {
	n       int
	samples []string
}

const (
	maxSamples   = 3
	sampleLength = 80
)

// Add keeps b, an event, comment or message that did not confirm.
func (r *Received) Add(b []byte) {
	r.n++
	if len(r.samples) < maxSamples {
		r.samples = append(r.samples, strconv.Quote(clip(string(b), sampleLength)))
	}
}

// Describe says what arrived after `after` (a unit is a "line", "message" or
// "event"), for the error's "received instead".
func (r *Received) Describe(after, unit string) string {
	if r == nil || r.n == 0 {
		return "nothing after " + after
	}
	s := fmt.Sprintf("%d %s after %s: %s", r.n, plural(r.n, unit), after, strings.Join(r.samples, ", "))
	if r.n > len(r.samples) {
		s += ", …"
	}
	return s
}

func plural(n int, unit string) string {
	if n == 1 {
		return unit
	}
	return unit + "s"
}

// notConfirmed is the error of a subscription that was not live in time.
func notConfirmed(url string, c Confirm, timeout time.Duration, what string) error {
	return fmt.Errorf("subscribe %s: %w: confirmation %s: %s within %v; received instead %s",
		url, ErrNotConfirmed, c, c.awaited(), timeout, what)
}

func (c Confirm) awaited() string {
	switch c.Mode {
	case ConfirmComment:
		return fmt.Sprintf("no comment or message starting with %q", c.Prefix)
	case ConfirmFirstEvent:
		return "no event carrying a loadramp marker"
	}
	return "no answer"
}

// NotConfirmedError is the error of a first-event subscription that received
// no marked event in time; what describes what it received instead.
func NotConfirmedError(url string, c Confirm, timeout time.Duration, what string) error {
	return notConfirmed(url, c, timeout, what)
}
