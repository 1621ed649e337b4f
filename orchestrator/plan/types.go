// Package plan holds the ramp plan schema (version 1), its strict decoding,
// defaults, validation, templates and the step schedule.
package plan

import "time"

// Engines known to the plan schema.
const (
	EngineBuiltin = "builtin"
	EngineLocust  = "locust"
)

// Providers known to the plan schema.
const (
	ProviderLocal     = "local"
	ProviderTerraform = "terraform"
	ProviderStatic    = "static"
)

// Ramp orders.
const (
	OrderRoundRobin = "round-robin"
	OrderSequential = "sequential"
)

// Plan is a whole ramp plan, as written in YAML (version 1).
type Plan struct {
	Version     int               `yaml:"version" json:"version"`
	Name        string            `yaml:"name" json:"name"`
	Description string            `yaml:"description,omitempty" json:"description,omitempty"`
	Fleets      map[string]*Fleet `yaml:"fleets" json:"fleets"`
	// Static parameters: fixed for the whole run, recorded on every report row.
	Static          map[string]any `yaml:"static,omitempty" json:"static,omitempty"`
	Workload        Workload       `yaml:"workload" json:"workload"`
	Probe           *Probe         `yaml:"probe,omitempty" json:"probe,omitempty"`
	Parameters      []Parameter    `yaml:"parameters" json:"parameters"`
	Ramp            Ramp           `yaml:"ramp" json:"ramp"`
	Gates           []string       `yaml:"gates,omitempty" json:"gates,omitempty"`
	GeneratorHealth []string       `yaml:"generator_health,omitempty" json:"generator_health,omitempty"`
	// DefaultChecks turns loadramp's default checks off (checks.go).
	DefaultChecks *DefaultChecks `yaml:"default_checks,omitempty" json:"default_checks,omitempty"`
	Abort         []string       `yaml:"abort,omitempty" json:"abort,omitempty"`
	Report        Report         `yaml:"report,omitempty" json:"report,omitempty"`
	Campaign      *Campaign      `yaml:"campaign,omitempty" json:"campaign,omitempty"`
	// Prometheus is a Prometheus source of the plan (see Prometheus).
	Prometheus *Prometheus `yaml:"prometheus,omitempty" json:"prometheus,omitempty"`

	// Filled by Parse: the line of every path written in the plan (0 for a
	// path set by --set), and the YAML after --set overrides.
	lines map[string]int
	raw   []byte
	// dir is the directory of the plan file (Load), which relative feeder
	// paths are resolved against; "" for the working directory.
	dir string
}

// Fleet is a group of hosts or processes: the target, or the load generators.
type Fleet struct {
	Provider  string            `yaml:"provider" json:"provider"`
	Processes []Process         `yaml:"processes,omitempty" json:"processes,omitempty"`
	Outputs   map[string]string `yaml:"outputs,omitempty" json:"outputs,omitempty"`
	// Logs are extra log files scanned for bottleneck signatures; process output
	// always is.
	Logs      []string   `yaml:"logs,omitempty" json:"logs,omitempty"`
	Terraform *Terraform `yaml:"terraform,omitempty" json:"terraform,omitempty"`
	// Prometheus is a Prometheus source of the fleet's hosts (see Prometheus).
	Prometheus *Prometheus `yaml:"prometheus,omitempty" json:"prometheus,omitempty"`
	// Agents says where the fleet's agents are (see Agents).
	Agents *Agents `yaml:"agents,omitempty" json:"agents,omitempty"`
}

// Process is one process the local provider starts.
type Process struct {
	Name    string            `yaml:"name" json:"name"`
	Command []string          `yaml:"command" json:"command"`
	Env     map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	Dir     string            `yaml:"dir,omitempty" json:"dir,omitempty"`
	// Ready is a URL (http://, https://) answered with a 2xx, or tcp://host:port
	// accepting connections, once the process is ready.
	Ready string `yaml:"ready,omitempty" json:"ready,omitempty"`
	// ReadyTimeout bounds the wait for Ready (default 30s).
	ReadyTimeout Duration `yaml:"ready_timeout,omitempty" json:"ready_timeout,omitempty"`
	// Files are written into the run directory before the process starts (name ->
	// templated content), for configuration files such as nginx.conf.
	Files map[string]string `yaml:"files,omitempty" json:"files,omitempty"`
	// Replicas is how many copies to start (default 1), named name-1..name-N
	// when more than one or scalable.
	Replicas int `yaml:"replicas,omitempty" json:"replicas,omitempty"`
	// Scalable makes the process the fleet's unit of growth: when a step is
	// generator-fail, the generators fleet multiplies the replicas of its
	// scalable processes (by ramp.factor) and reruns the step.
	Scalable bool `yaml:"scalable,omitempty" json:"scalable,omitempty"`
}

// Terraform configures a fleet provisioned with Terraform.
type Terraform struct {
	Dir      string         `yaml:"dir" json:"dir"`
	Vars     map[string]any `yaml:"vars,omitempty" json:"vars,omitempty"`
	ScaleVar string         `yaml:"scale_var,omitempty" json:"scale_var,omitempty"`
}

// Workload says what load the engine sends.
type Workload struct {
	Engine string `yaml:"engine" json:"engine"`
	HTTP   *HTTP  `yaml:"http,omitempty" json:"http,omitempty"`
	// Arrival is "constant" (default) or "poisson" for the builtin engine.
	Arrival string  `yaml:"arrival,omitempty" json:"arrival,omitempty"`
	Locust  *Locust `yaml:"locust,omitempty" json:"locust,omitempty"`
	// PubSub, instead of HTTP, makes the builtin engine a publish/subscribe
	// workload: load parameters publishers, subscribers and rate.
	PubSub *PubSub `yaml:"pubsub,omitempty" json:"pubsub,omitempty"`
}

// PubSub is the builtin engine's publish/subscribe workload: subscribers hold
// streams open (Server-Sent Events or WebSocket) while publishers send marked
// messages (HTTP requests or WebSocket messages), and every delivery's delay
// is measured.
type PubSub struct {
	PubSubBus `yaml:",inline"`
	// BodyBytes is the size of each published message (0: the smallest
	// message that carries the marker).
	BodyBytes int `yaml:"body_bytes,omitempty" json:"body_bytes,omitempty"`
	// Timeout bounds each publish request, each subscription's confirmation
	// and each message's delivery (0: 5s); a message not delivered within it
	// counts as lost.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// PubSubBus is how loadramp talks to a publish/subscribe server, shared by
// workload.pubsub and a pubsub probe. Its templates are per client: rendered
// for each subscriber and publisher, they also see .index, .topic (not in the
// topic templates) and, in Body, .marker.
type PubSubBus struct {
	// Publish is the publish URL: http(s):// sends a request per message,
	// ws(s):// a message on one WebSocket per publisher.
	Publish string `yaml:"publish,omitempty" json:"publish,omitempty"`
	// Subscribe is the subscribe URL: http(s):// for Server-Sent Events,
	// ws(s):// for WebSocket.
	Subscribe string `yaml:"subscribe,omitempty" json:"subscribe,omitempty"`
	// PublishMethod is the HTTP publishing method (default POST).
	PublishMethod string `yaml:"publish_method,omitempty" json:"publish_method,omitempty"`
	// PublishHeaders go with every publish request or WebSocket handshake.
	PublishHeaders map[string]string `yaml:"publish_headers,omitempty" json:"publish_headers,omitempty"`
	// Body is the envelope of each message: where loadramp's marker goes.
	Body string `yaml:"body,omitempty" json:"body,omitempty"`
	// PublishTopic is each publisher's topic (sees .index).
	PublishTopic string `yaml:"publish_topic,omitempty" json:"publish_topic,omitempty"`
	// PublishOpen are messages sent once a publisher's WebSocket opens.
	PublishOpen []string `yaml:"publish_open,omitempty" json:"publish_open,omitempty"`
	// SubscribeHeaders go with every subscription request or handshake.
	SubscribeHeaders map[string]string `yaml:"subscribe_headers,omitempty" json:"subscribe_headers,omitempty"`
	// SubscribeTopic is each subscriber's topic (sees .index).
	SubscribeTopic string `yaml:"subscribe_topic,omitempty" json:"subscribe_topic,omitempty"`
	// SubscribeOpen are messages sent once a subscriber's WebSocket opens.
	SubscribeOpen []string `yaml:"subscribe_open,omitempty" json:"subscribe_open,omitempty"`
	// Replies answer a WebSocket message starting with a key with its value.
	Replies map[string]string `yaml:"replies,omitempty" json:"replies,omitempty"`
	// Confirm is when a subscription is live: none (default), first-event or
	// comment PREFIX.
	Confirm string `yaml:"confirm,omitempty" json:"confirm,omitempty"`
	// Settle is the wait, with confirm none, between the last subscription
	// and the first publish (nil: the default, 500ms).
	Settle *Duration `yaml:"settle,omitempty" json:"settle,omitempty"`
}

// HTTP is what the builtin engine sends: one request (Method, URL, Body,
// Headers, Check) or a weighted mix of named Requests.
type HTTP struct {
	Method  string            `yaml:"method,omitempty" json:"method,omitempty"`
	URL     string            `yaml:"url,omitempty" json:"url,omitempty"`
	Body    string            `yaml:"body,omitempty" json:"body,omitempty"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Check is the single request's response check.
	Check   *Check   `yaml:"check,omitempty" json:"check,omitempty"`
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Insecure skips TLS certificate verification (test targets only).
	Insecure bool `yaml:"insecure,omitempty" json:"insecure,omitempty"`
	// Requests, instead of the single request, is a weighted mix: each
	// request sent is one of them, in the proportions of their weights.
	Requests []Request `yaml:"requests,omitempty" json:"requests,omitempty"`
	// Feeders are data files whose rows request templates read with
	// {{ feed "NAME" "COLUMN" }}, by name.
	Feeders map[string]*Feeder `yaml:"feeders,omitempty" json:"feeders,omitempty"`
}

// Request is one request of a workload.http mix.
type Request struct {
	// Name names the request's metrics (request.<name>.latency.p99) and gates.
	Name string `yaml:"name" json:"name"`
	// Weight is the request's share of the mix, relative to the others' (default 1).
	Weight  int               `yaml:"weight,omitempty" json:"weight,omitempty"`
	Method  string            `yaml:"method,omitempty" json:"method,omitempty"`
	URL     string            `yaml:"url" json:"url"`
	Body    string            `yaml:"body,omitempty" json:"body,omitempty"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Check   *Check            `yaml:"check,omitempty" json:"check,omitempty"`
}

// Check is a response check: an answer that fails it counts as an error of
// class check (metrics.ClassCheck).
type Check struct {
	// Status lists the expected status codes; empty: any status below 400.
	Status []int `yaml:"status,omitempty" json:"status,omitempty"`
	// BodyContains is a substring the body must contain.
	BodyContains string `yaml:"body_contains,omitempty" json:"body_contains,omitempty"`
	// JSON checks one field of a JSON body.
	JSON *JSONCheck `yaml:"json,omitempty" json:"json,omitempty"`
}

// JSONCheck checks one field of a JSON body: it must exist and, when Equals is
// given, equal it.
type JSONCheck struct {
	// Path is the field: object keys and array indexes joined by dots
	// ("data.items.0.id").
	Path string `yaml:"path" json:"path"`
	// Equals is the value the field must have: a string, number, boolean or
	// null. Absent: the field must only exist.
	Equals any `yaml:"equals,omitempty" json:"equals,omitempty"`
}

// Feeder is a data file that request templates read rows from.
type Feeder struct {
	// File is the path of the data file, relative to the plan file's directory.
	File string `yaml:"file" json:"file"`
	// Format is csv (a header line names the columns) or jsonl (one JSON
	// object a line); default: from the file's extension.
	Format string `yaml:"format,omitempty" json:"format,omitempty"`
	// Mode says which row each request reads: circular (the next, wrapping
	// at the end; default), random, or unique (each row once; a step that
	// needs more rows than the file has fails).
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
}

// Locust configures the locust engine.
type Locust struct {
	Locustfile string `yaml:"locustfile,omitempty" json:"locustfile,omitempty"`
	Host       string `yaml:"host,omitempty" json:"host,omitempty"`
	// Master is the master's web URL (templated from the generators fleet outputs).
	Master string `yaml:"master,omitempty" json:"master,omitempty"`
	// Workers is the number of workers the master should have (templated,
	// rendered before every step so that it follows a grown fleet, e.g.
	// "{{ .fleets.generators.size }}"). Empty: the most the master has had.
	Workers string `yaml:"workers,omitempty" json:"workers,omitempty"`
}

// Probe is an independent end-to-end probe run beside the engine.
type Probe struct {
	Kind string `yaml:"kind" json:"kind"`
	URL  string `yaml:"url,omitempty" json:"url,omitempty"`
	// PubSubBus, for kind pubsub, is the same as the pubsub workload's.
	PubSubBus `yaml:",inline"`
	Rate      float64 `yaml:"rate,omitempty" json:"rate,omitempty"`
	// Expect, for kind http, is a substring the response body must contain.
	Expect string `yaml:"expect,omitempty" json:"expect,omitempty"`
	// Timeout bounds each probe request and, for kind pubsub, the wait for
	// a message's delivery after the hold (0: 2s); later messages are lost.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Parameter is a load parameter, doubled from Start up to Max.
type Parameter struct {
	Name  string  `yaml:"name" json:"name"`
	Start float64 `yaml:"start" json:"start"`
	Max   float64 `yaml:"max" json:"max"`
}

// Ramp shapes the schedule and each step's windows.
type Ramp struct {
	Factor   float64  `yaml:"factor,omitempty" json:"factor,omitempty"`
	Order    string   `yaml:"order,omitempty" json:"order,omitempty"`
	Warmup   Duration `yaml:"warmup,omitempty" json:"warmup,omitempty"`
	Hold     Duration `yaml:"hold,omitempty" json:"hold,omitempty"`
	Cooldown Duration `yaml:"cooldown,omitempty" json:"cooldown,omitempty"`
	Confirm  int      `yaml:"confirm,omitempty" json:"confirm,omitempty"`
	Refine   int      `yaml:"refine,omitempty" json:"refine,omitempty"`
	MaxSteps int      `yaml:"max_steps,omitempty" json:"max_steps,omitempty"`
	// InterferenceReruns is how many times a step whose generator fell
	// behind because other work took its CPU (the hypervisor's steal, other
	// processes' threads), or with half its CPU to spare and nothing
	// measured to say why, is rerun on the same generators before the
	// generator fleet grows or the run ends generator-limited.
	InterferenceReruns int `yaml:"interference_reruns,omitempty" json:"interference_reruns,omitempty"`
}

// Report configures the report formats and upload.
type Report struct {
	Formats []string `yaml:"formats,omitempty" json:"formats,omitempty"`
	Upload  string   `yaml:"upload,omitempty" json:"upload,omitempty"`
}

// Campaign is a list of variants of the static parameters.
type Campaign struct {
	Variants             []map[string]any `yaml:"variants" json:"variants"`
	AllowMultipleChanges bool             `yaml:"allow_multiple_changes,omitempty" json:"allow_multiple_changes,omitempty"`
	Cost                 []map[string]any `yaml:"cost,omitempty" json:"cost,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("5s", "250ms").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
