package plan

import (
	"strings"
	"testing"
)

// pubsubPlan is basePlan with the pubsub workload and its parameters.
const pubsubPlan = `version: 1
name: ps
fleets:
  target:
    provider: local
    processes:
      - name: bus
        command: [bin/eventbus, --listen, '127.0.0.1:{{ port "bus" }}']
    outputs:
      endpoint: 'http://127.0.0.1:{{ port "bus" }}'
workload:
  engine: builtin
  pubsub:
    publish: "{{ .fleets.target.endpoint }}/publish?topic=load"
    subscribe: "{{ .fleets.target.endpoint }}/subscribe?topic=load"
    body_bytes: 256
parameters:
  - { name: publishers, start: 1, max: 64 }
  - { name: subscribers, start: 1, max: 256 }
  - { name: rate, start: 10, max: 10 }
probe:
  kind: pubsub
  publish: "{{ .fleets.target.endpoint }}/publish?topic=probe"
  subscribe: "{{ .fleets.target.endpoint }}/subscribe?topic=probe"
  rate: 20
  timeout: 3s
ramp:
  hold: 5s
gates:
  - pubsub.delay.p99 < 100ms
  - probe.lost.ratio < 0.01
`

func TestValidatePubSub(t *testing.T) {
	withBoth := strings.Replace(pubsubPlan, "  pubsub:\n", "  http: { url: 'http://127.0.0.1:1/x' }\n  pubsub:\n", 1)
	noWorkload := strings.Replace(pubsubPlan, "  pubsub:\n    publish: \"{{ .fleets.target.endpoint }}/publish?topic=load\"\n    subscribe: \"{{ .fleets.target.endpoint }}/subscribe?topic=load\"\n    body_bytes: 256\n", "", 1)
	if noWorkload == pubsubPlan {
		t.Fatal("noWorkload edit did not apply")
	}
	tests := []struct {
		name string
		src  string
		sets []string
		want string // "" means valid
	}{
		{"valid", pubsubPlan, nil, ""},
		{"http parameter with pubsub", pubsubPlan, []string{"parameters[0].name=connections"},
			`parameters[0].name: unknown parameter "connections" for the builtin engine; use publishers, subscribers or rate`},
		{"pubsub parameter with http", basePlan, []string{"parameters[1].name=subscribers"},
			`parameters[1].name: unknown parameter "subscribers" for the builtin engine; use rate or connections`},
		{"both workloads", withBoth, nil,
			"workload.pubsub (line 14): give workload.http or workload.pubsub, not both"},
		{"no workload", noWorkload, nil,
			"workload.http (line 11): missing; the builtin engine needs workload.http (requests) or workload.pubsub (publish/subscribe)"},
		{"rate missing", pubsubPlan, []string{"parameters[2].name=subscribers"},
			"parameters (line 17): the builtin engine needs a rate parameter (messages/s per publisher)"},
		{"publish not a URL", pubsubPlan, []string{"workload.pubsub.publish=ftp://x/y"},
			`workload.pubsub.publish: "ftp://x/y": use http:// or https:// (a request per message) or ws:// or wss:// (WebSocket messages)`},
		{"subscribe without a host", pubsubPlan, []string{"workload.pubsub.subscribe=ws:///x"},
			`workload.pubsub.subscribe: "ws:///x": use a ws:// or wss:// URL with a host`},
		{"subscribe missing", pubsubPlan, []string{"workload.pubsub.subscribe="},
			"workload.pubsub.subscribe: missing"},
		{"body too big", pubsubPlan, []string{"workload.pubsub.body_bytes=2000000"},
			"workload.pubsub.body_bytes: must be between 0 and 1048576 bytes (got 2000000)"},
		{"negative timeout", pubsubPlan, []string{"workload.pubsub.timeout=-1s"},
			"workload.pubsub.timeout: must be >= 0"},
		{"poisson arrival", pubsubPlan, []string{"workload.arrival=poisson"},
			"workload.arrival: the pubsub workload publishes at a constant rate"},
		{"bad template", pubsubPlan, []string{"workload.pubsub.subscribe={{ .fleets.target.endpiont }}/s"},
			`workload.pubsub.subscribe: .fleets.target.endpiont: fleet "target" has no output "endpiont"`},
		{"pubsub with locust", pubsubPlan, []string{"workload.engine=locust", "workload.locust={locustfile: x.py}", "parameters=[{name: users, start: 1, max: 2}]"},
			"workload.pubsub (line 13): only for the builtin engine"},
		{"expect on a pubsub probe", pubsubPlan, []string{"probe.expect=ok"},
			"probe.expect: only for probe kind http"},
		{"expect on an http probe", pubsubPlan, []string{"probe={kind: http, url: 'http://127.0.0.1:1/healthz', expect: ok, rate: 5}"}, ""},
		{"pubsub keys on an http probe", pubsubPlan, []string{"probe.kind=http", "probe.url=http://127.0.0.1:1/healthz"},
			"probe.publish (line 23): only for probe kind pubsub"},
		{"url on a pubsub probe", pubsubPlan, []string{"probe.url=http://127.0.0.1:1/healthz"},
			"probe.url: only for probe kind http"},
		{"negative probe timeout", pubsubPlan, []string{"probe.timeout=-2s"},
			"probe.timeout: must be >= 0"},
	}
	tests = append(tests, busCases...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := mustParse(t, tt.src, tt.sets...).Validate()
			if tt.want == "" {
				if len(errs) > 0 {
					t.Fatalf("want valid, got:\n%v", Errors(errs))
				}
				return
			}
			got := errStrings(errs)
			for _, g := range got {
				if strings.HasPrefix(g, tt.want) {
					return
				}
			}
			t.Fatalf("want a problem starting with\n  %s\ngot:\n  %s", tt.want, strings.Join(got, "\n  "))
		})
	}
}

// busCases are the pub/sub settings' problems, each named by its field.
var busCases = []struct {
	name string
	src  string
	sets []string
	want string
}{
	{"websocket everything", pubsubPlan, []string{
		"workload.pubsub.publish=ws://127.0.0.1:1/",
		"workload.pubsub.subscribe={{ .fleets.target.endpoint }}/sub/{{ .topic }}",
		"workload.pubsub.publish_topic=load-{{ mod .index 4 }}",
		"workload.pubsub.subscribe_topic=load-{{ mod .index 4 }}",
		`workload.pubsub.publish_open=["CONNECT {}\r\n"]`,
		`workload.pubsub.body=PUB {{ .topic }} {{ len .marker }}\r\n{{ .marker }}\r\n`,
		`workload.pubsub.replies={"PING": "PONG\r\n"}`,
		"workload.pubsub.confirm=first-event",
		`probe.confirm='comment ": subscribed"'`,
	}, ""},
	{"confirm comment", pubsubPlan, []string{`workload.pubsub.confirm='comment ": subscribed"'`}, ""},
	{"confirm comment, bare prefix", pubsubPlan, []string{`workload.pubsub.confirm="comment : subscribed"`}, ""},
	{"settle with none", pubsubPlan, []string{"workload.pubsub.settle=0s"}, ""},
	{"unknown confirmation", pubsubPlan, []string{"workload.pubsub.confirm=sometimes"},
		`workload.pubsub.confirm: unknown confirmation "sometimes"; use none, first-event, or comment PREFIX (for example comment ": subscribed")`},
	{"comment without its prefix", pubsubPlan, []string{"probe.confirm=comment"},
		`probe.confirm: confirmation "comment": comment needs the prefix it waits for`},
	{"settle with first-event", pubsubPlan, []string{"workload.pubsub.confirm=first-event", "workload.pubsub.settle=1s"},
		"workload.pubsub.settle: only with confirm none (the wait before publishing); first-event confirms each subscription itself"},
	{"negative settle", pubsubPlan, []string{"workload.pubsub.settle=-1s"}, "workload.pubsub.settle: must be >= 0"},
	{"method on websocket publishing", pubsubPlan, []string{"workload.pubsub.publish=ws://127.0.0.1:1/", "workload.pubsub.publish_method=PUT"},
		"workload.pubsub.publish_method: only for HTTP publishing"},
	{"bad method", pubsubPlan, []string{"workload.pubsub.publish_method=P O S T"},
		`workload.pubsub.publish_method: "P O S T" is not an HTTP method`},
	{"bad header name", pubsubPlan, []string{"workload.pubsub.subscribe_headers={'a b': x}"},
		`workload.pubsub.subscribe_headers.a b: "a b" is not a valid header name`},
	{"open messages over HTTP", pubsubPlan, []string{"workload.pubsub.publish_open=[hello]"},
		"workload.pubsub.publish_open: only for WebSocket publishing"},
	{"open messages over SSE", pubsubPlan, []string{"probe.subscribe_open=[hello]"},
		"probe.subscribe_open: only for WebSocket subscriptions"},
	{"replies without a WebSocket", pubsubPlan, []string{"workload.pubsub.replies={PING: PONG}"},
		"workload.pubsub.replies: only for WebSocket connections"},
	{"body without the marker", pubsubPlan, []string{`workload.pubsub.body='{"data": "hello"}'`},
		"workload.pubsub.body: the envelope must print {{ .marker }}"},
	{"marker outside the body", pubsubPlan, []string{"workload.pubsub.subscribe={{ .fleets.target.endpoint }}/{{ .marker }}"},
		"workload.pubsub.subscribe: .marker: only the body sees .marker"},
	{"topic in a topic template", pubsubPlan, []string{"workload.pubsub.subscribe_topic=t-{{ .topic }}"},
		"workload.pubsub.subscribe_topic: .topic: a topic template sees .index, not .topic"},
	{"client value outside the pub/sub settings", basePlan, []string{"workload.http.url=http://127.0.0.1:1/{{ .index }}"},
		"workload.http.url: .index: only the pub/sub settings, rendered per subscriber and publisher, see .index"},
	{"client and plan values in one action", pubsubPlan, []string{`workload.pubsub.subscribe={{ printf "%s/%s" .fleets.target.endpoint .topic }}`, "workload.pubsub.subscribe_topic=t{{ mod .index .params.subscribers }}"}, ""},
	{"port of a client value", pubsubPlan, []string{`workload.pubsub.subscribe=http://127.0.0.1:{{ port .topic }}/`},
		"workload.pubsub.subscribe: port .topic: port takes the plan's values"},
	{"variables in a client template", pubsubPlan, []string{`workload.pubsub.body={{ $m := .marker }}{{ $m }}`},
		"workload.pubsub.body: {{$m := .marker}}: variables are not available"},
	{"unknown client reference", pubsubPlan, []string{"workload.pubsub.body={{ .marker }}{{ .idx }}"},
		"workload.pubsub.body: .idx: unknown reference; this template sees .static, .params, .fleets, .run, .index, .topic, .marker"},
}

func TestPubSubPlanDecodes(t *testing.T) {
	p := mustParse(t, pubsubPlan)
	ps := p.Workload.PubSub
	if ps == nil || ps.BodyBytes != 256 || !strings.HasSuffix(ps.Subscribe, "/subscribe?topic=load") {
		t.Fatalf("workload.pubsub = %+v", ps)
	}
	if p.Probe.Timeout.String() != "3s" {
		t.Errorf("probe.timeout = %v", p.Probe.Timeout)
	}
	steps := p.Schedule()
	if len(steps) < 3 || steps[1].Changed != "publishers" || steps[2].Changed != "subscribers" {
		t.Fatalf("schedule starts %+v", steps[:3])
	}
	if v := steps[1].Values["publishers"]; v != 2 {
		t.Errorf("step 2 publishers = %v, want 2", v)
	}
}
