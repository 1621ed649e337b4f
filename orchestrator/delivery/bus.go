package delivery

import (
	"fmt"
	"net/http"
	"net/textproto"
	"sort"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Bus is how loadramp reaches a publish/subscribe server, as the pubsub
// workload and the pubsub probe both describe it. Its strings are client
// templates (see ParseTemplate): they are rendered for each subscriber and
// publisher with its index and topic. It is plain data, so it travels.
type Bus struct {
	// Publish is the publish URL: http(s):// sends each message as an HTTP
	// request, ws(s):// as a message on one WebSocket per publisher.
	Publish string `json:"publish"`
	// Subscribe is the subscribe URL: http(s):// for Server-Sent Events,
	// ws(s):// for WebSocket, one connection per subscriber.
	Subscribe string `json:"subscribe"`
	// PublishMethod is the HTTP publishing method (default POST).
	PublishMethod string `json:"publish_method,omitempty"`
	// PublishHeaders go with each publish request or WebSocket handshake;
	// SubscribeHeaders with each subscription. Values are templates.
	PublishHeaders   map[string]string `json:"publish_headers,omitempty"`
	SubscribeHeaders map[string]string `json:"subscribe_headers,omitempty"`
	// Body is the envelope: where loadramp's marker goes (default
	// DefaultBody). It sees .marker besides .index and .topic.
	Body string `json:"body,omitempty"`
	// PublishTopic and SubscribeTopic are each client's topic (they see
	// .index only); the other templates see it as .topic. Empty: one topic,
	// the URLs'.
	PublishTopic   string `json:"publish_topic,omitempty"`
	SubscribeTopic string `json:"subscribe_topic,omitempty"`
	// PublishOpen and SubscribeOpen are messages sent once a WebSocket
	// opens: a protocol's hello and subscribe commands.
	PublishOpen   []string `json:"publish_open,omitempty"`
	SubscribeOpen []string `json:"subscribe_open,omitempty"`
	// Replies: on a WebSocket, a message starting with a key is answered
	// with its value (a protocol's keep-alive) and is not an event.
	Replies map[string]string `json:"replies,omitempty"`
	// Confirm is when a subscription is live (ParseConfirm; default none).
	Confirm string `json:"confirm,omitempty"`
	// Settle is the wait, with confirmation none, between the last
	// subscription and the first publish.
	Settle time.Duration `json:"settle,omitempty"`
}

// Compiled is a Bus checked and parsed, ready to render clients.
type Compiled struct {
	bus                        Bus
	confirm                    Confirm
	pubTransport, subTransport string
	publish, subscribe, body   *Template
	pubTopic, subTopic         *Template
	pubHeaders, subHeaders     map[string]*Template
	pubOpen, subOpen           []*Template
	replies                    []Reply
}

// Compile checks b and parses its templates. Errors name the setting.
func (b Bus) Compile() (*Compiled, error) {
	c := &Compiled{bus: b}
	var err error
	if c.confirm, err = ParseConfirm(b.Confirm); err != nil {
		return nil, fmt.Errorf("confirm: %w", err)
	}
	if b.Settle < 0 {
		return nil, fmt.Errorf("settle %v: must be >= 0", b.Settle)
	}
	parse := func(name, text string) (*Template, error) { return ParseTemplate(name, text) }
	if c.publish, err = parse("publish", b.Publish); err != nil {
		return nil, err
	}
	if c.subscribe, err = parse("subscribe", b.Subscribe); err != nil {
		return nil, err
	}
	body := b.Body
	if body == "" {
		body = DefaultBody
	}
	if c.body, err = parse("body", body); err != nil {
		return nil, err
	}
	if c.pubTopic, err = parse("publish_topic", b.PublishTopic); err != nil {
		return nil, err
	}
	if c.subTopic, err = parse("subscribe_topic", b.SubscribeTopic); err != nil {
		return nil, err
	}
	if c.pubHeaders, err = parseHeaders("publish_headers", b.PublishHeaders); err != nil {
		return nil, err
	}
	if c.subHeaders, err = parseHeaders("subscribe_headers", b.SubscribeHeaders); err != nil {
		return nil, err
	}
	for i, m := range b.PublishOpen {
		t, err := parse(fmt.Sprintf("publish_open[%d]", i), m)
		if err != nil {
			return nil, err
		}
		c.pubOpen = append(c.pubOpen, t)
	}
	for i, m := range b.SubscribeOpen {
		t, err := parse(fmt.Sprintf("subscribe_open[%d]", i), m)
		if err != nil {
			return nil, err
		}
		c.subOpen = append(c.subOpen, t)
	}
	keys := make([]string, 0, len(b.Replies))
	for k := range b.Replies {
		if k == "" {
			return nil, fmt.Errorf("replies: a reply needs the start of the message it answers")
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.replies = append(c.replies, Reply{On: k, Send: b.Replies[k]})
	}
	// The transports come from the URLs as rendered for client 0: a URL
	// that is all template is checked per client when opened.
	if _, u, err := c.renderURL(c.publish, c.pubTopic, 0); err != nil {
		return nil, err
	} else if c.pubTransport, err = PublishTransport(u); err != nil {
		return nil, err
	}
	if _, u, err := c.renderURL(c.subscribe, c.subTopic, 0); err != nil {
		return nil, err
	} else if c.subTransport, err = SubscribeTransport(u); err != nil {
		return nil, err
	}
	if c.pubTransport == TransportHTTP && len(c.pubOpen) > 0 {
		return nil, fmt.Errorf("publish_open: only for WebSocket publishing (a ws:// or wss:// publish URL)")
	}
	if c.pubTransport != TransportHTTP && b.PublishMethod != "" {
		return nil, fmt.Errorf("publish_method: only for HTTP publishing (an http:// or https:// publish URL)")
	}
	if b.PublishMethod != "" && !httpguts.ValidHeaderFieldName(b.PublishMethod) {
		return nil, fmt.Errorf("publish_method %q: not an HTTP method", b.PublishMethod)
	}
	if c.subTransport == TransportSSE && len(c.subOpen) > 0 {
		return nil, fmt.Errorf("subscribe_open: only for WebSocket subscriptions (a ws:// or wss:// subscribe URL)")
	}
	if len(c.replies) > 0 && c.pubTransport != TransportWebSocket && c.subTransport != TransportWebSocket {
		return nil, fmt.Errorf("replies: only for WebSocket connections (a ws:// or wss:// URL)")
	}
	return c, nil
}

func parseHeaders(name string, h map[string]string) (map[string]*Template, error) {
	if len(h) == 0 {
		return nil, nil
	}
	out := make(map[string]*Template, len(h))
	for k, v := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, fmt.Errorf("%s: %q is not a valid header name", name, k)
		}
		t, err := ParseTemplate(name+"."+k, v)
		if err != nil {
			return nil, err
		}
		out[k] = t
	}
	return out, nil
}

// Confirm is the bus's confirmation mode.
func (c *Compiled) Confirm() Confirm { return c.confirm }

// Settle is the wait before publishing, with confirmation none.
func (c *Compiled) Settle() time.Duration {
	if c.confirm.Mode != ConfirmNone {
		return 0
	}
	return c.bus.Settle
}

// Topics reports whether the bus spreads clients over topics.
func (c *Compiled) Topics() bool { return c.bus.PublishTopic != "" || c.bus.SubscribeTopic != "" }

// SubscribeTransport and PublishTransport name the bus's transports.
func (c *Compiled) SubscribeTransport() string { return c.subTransport }

// PublishTransport names the bus's publishing transport.
func (c *Compiled) PublishTransport() string { return c.pubTransport }

func (c *Compiled) renderURL(u, topic *Template, index int) (string, string, error) {
	t, err := topic.Execute(Vars{Index: index})
	if err != nil {
		return "", "", err
	}
	s, err := u.Execute(Vars{Index: index, Topic: t, HasTopic: true})
	return t, s, err
}

// PublishTopic renders publisher index's topic.
func (c *Compiled) PublishTopic(index int) (string, error) {
	return c.pubTopic.Execute(Vars{Index: index})
}

// SubscribeTopic renders subscriber index's topic.
func (c *Compiled) SubscribeTopic(index int) (string, error) {
	return c.subTopic.Execute(Vars{Index: index})
}

// Subscription renders subscriber index on topic.
func (c *Compiled) Subscription(index int, topic string, timeout time.Duration) (Subscription, error) {
	v := Vars{Index: index, Topic: topic, HasTopic: true}
	s := Subscription{Confirm: c.confirm, Timeout: timeout, Replies: c.replies}
	var err error
	if s.URL, err = c.subscribe.Execute(v); err != nil {
		return s, err
	}
	if s.Header, err = renderHeaders(c.subHeaders, v); err != nil {
		return s, err
	}
	if s.Open, err = renderAll(c.subOpen, v); err != nil {
		return s, err
	}
	if c.subTransport != TransportWebSocket {
		s.Replies = nil
	}
	return s, nil
}

// Publication renders publisher index on topic.
func (c *Compiled) Publication(index int, topic string, timeout time.Duration) (Publication, error) {
	v := Vars{Index: index, Topic: topic, HasTopic: true}
	p := Publication{Method: c.bus.PublishMethod, Timeout: timeout, Replies: c.replies}
	var err error
	if p.URL, err = c.publish.Execute(v); err != nil {
		return p, err
	}
	if p.Header, err = renderHeaders(c.pubHeaders, v); err != nil {
		return p, err
	}
	if c.pubTransport == TransportHTTP && p.Header.Get("Content-Type") == "" && c.bus.Body == "" {
		if p.Header == nil {
			p.Header = http.Header{}
		}
		p.Header.Set("Content-Type", "application/json") // DefaultBody is JSON
	}
	if p.Open, err = renderAll(c.pubOpen, v); err != nil {
		return p, err
	}
	if c.pubTransport != TransportWebSocket {
		p.Replies = nil
	}
	return p, nil
}

// Body renders publisher index's envelope on topic for the messages of src,
// padded to at least size bytes.
func (c *Compiled) Body(index int, topic, src string, size int) (*Body, error) {
	return NewBody(c.body, Vars{Index: index, Topic: topic, HasTopic: true}, src, index, size)
}

func renderHeaders(ts map[string]*Template, v Vars) (http.Header, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	h := make(http.Header, len(ts))
	for k, t := range ts {
		s, err := t.Execute(v)
		if err != nil {
			return nil, err
		}
		if !httpguts.ValidHeaderFieldValue(s) {
			return nil, fmt.Errorf("%s: %q is not a valid header value", t.name, clip(s, 60))
		}
		h[textproto.CanonicalMIMEHeaderKey(k)] = []string{s}
	}
	return h, nil
}

func renderAll(ts []*Template, v Vars) ([]string, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		s, err := t.Execute(v)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}
