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
	Version     int               `yaml:"version" json:"version" enum:"version" schema:"required" doc:"the plan schema version: 1"`
	Name        string            `yaml:"name" json:"name" keys:"planName" schema:"required" doc:"names the run directories (<UTC time>-<name>): 1-64 letters, digits, '.', '_', '-'"`
	Description string            `yaml:"description,omitempty" json:"description,omitempty" doc:"free text, printed by loadramp plan"`
	Fleets      map[string]*Fleet `yaml:"fleets" json:"fleets" keys:"ident" schema:"required" doc:"fleet name -> fleet; target (the system under test) is required, generators is the load-generator fleet"`
	// Static parameters: fixed for the whole run, recorded on every report row.
	Static          map[string]any `yaml:"static,omitempty" json:"static,omitempty" doc:"static parameters: fixed for a run, on every report row, .static.NAME in templates; campaign variants override them"`
	Workload        Workload       `yaml:"workload" json:"workload" doc:"what load is sent: the builtin engine (http or pubsub) or locust"`
	Probe           *Probe         `yaml:"probe,omitempty" json:"probe,omitempty" doc:"an end-to-end probe beside the load: what one more user feels"`
	Parameters      []Parameter    `yaml:"parameters" json:"parameters" schema:"required" doc:"the load parameters to ramp, each doubled (ramp.factor) from start to max in turn"`
	Ramp            Ramp           `yaml:"ramp" json:"ramp" doc:"the step schedule and each step's windows"`
	Gates           []string       `yaml:"gates,omitempty" json:"gates,omitempty" schema:"required" doc:"expressions judged on each step's hold, e.g. \"latency.p99 < 100ms\": all must hold for a step to pass"`
	GeneratorHealth []string       `yaml:"generator_health,omitempty" json:"generator_health,omitempty" doc:"expressions on the generator's own health, e.g. \"generator.lag.p99 < 10ms\": a breach makes the step generator-fail, never a bottleneck"`
	Abort           []string       `yaml:"abort,omitempty" json:"abort,omitempty" doc:"expressions checked every second, e.g. \"errors.ratio > 0.5\": one that holds stops the step at once"`
	Report          Report         `yaml:"report,omitempty" json:"report,omitempty" doc:"report formats and upload"`
	Campaign        *Campaign      `yaml:"campaign,omitempty" json:"campaign,omitempty" doc:"one ramp per variant of the static parameters"`
	// Prometheus is a Prometheus source of the plan (see Prometheus).
	Prometheus *Prometheus `yaml:"prometheus,omitempty" json:"prometheus,omitempty" doc:"a Prometheus source: /metrics pages to scrape or a server to query, and named metrics for prom.* gates"`

	// Filled by Parse: the line of every path written in the plan (0 for a
	// path set by --set), and the YAML after --set overrides.
	lines map[string]int
	raw   []byte
}

// Fleet is a group of hosts or processes: the target, or the load generators.
type Fleet struct {
	Provider  string            `yaml:"provider" json:"provider" enum:"providers" schema:"nodefault" doc:"how the fleet is provisioned; local when processes are given"`
	Processes []Process         `yaml:"processes,omitempty" json:"processes,omitempty" doc:"local provider: processes started in order, each ready before the next"`
	Outputs   map[string]string `yaml:"outputs,omitempty" json:"outputs,omitempty" keys:"ident" doc:"values templates read as .fleets.FLEET.NAME (required for a static fleet, e.g. endpoint: http://10.0.0.5:8080)"`
	// Logs are extra log files scanned for bottleneck signatures; process output
	// always is.
	Logs      []string   `yaml:"logs,omitempty" json:"logs,omitempty" doc:"extra log files scanned for bottleneck signatures (templates)"`
	Terraform *Terraform `yaml:"terraform,omitempty" json:"terraform,omitempty" doc:"terraform provider: the module and its variables"`
	// Prometheus is a Prometheus source of the fleet's hosts (see Prometheus).
	Prometheus *Prometheus `yaml:"prometheus,omitempty" json:"prometheus,omitempty" doc:"a Prometheus source of the fleet's hosts"`
}

// Process is one process the local provider starts.
type Process struct {
	Name    string            `yaml:"name" json:"name" keys:"planName" schema:"required" doc:"unique in the fleet; its output goes to <run dir>/<fleet>-<name>.log"`
	Command []string          `yaml:"command" json:"command" schema:"required" doc:"argv (templates); a bare argv[0] is looked up in PATH"`
	Env     map[string]string `yaml:"env,omitempty" json:"env,omitempty" doc:"added to the inherited environment (templates)"`
	Dir     string            `yaml:"dir,omitempty" json:"dir,omitempty" doc:"working directory (template)"`
	// Ready is a URL (http://, https://) answered with a 2xx, or tcp://host:port
	// accepting connections, once the process is ready.
	Ready string `yaml:"ready,omitempty" json:"ready,omitempty" doc:"when the process is ready: an http(s):// URL answering 2xx, or tcp://host:port accepting connections (template)"`
	// ReadyTimeout bounds the wait for Ready (default 30s).
	ReadyTimeout Duration `yaml:"ready_timeout,omitempty" json:"ready_timeout,omitempty" doc:"how long to wait for ready"`
	// Files are written into the run directory before the process starts (name ->
	// templated content), for configuration files such as nginx.conf.
	Files map[string]string `yaml:"files,omitempty" json:"files,omitempty" doc:"files written into the run directory before the process starts: relative path -> content (template)"`
	// Replicas is how many copies to start (default 1), named name-1..name-N
	// when more than one or scalable.
	Replicas int `yaml:"replicas,omitempty" json:"replicas,omitempty" doc:"how many copies to start"`
	// Scalable makes the process the fleet's unit of growth: when a step is
	// generator-fail, the generators fleet multiplies the replicas of its
	// scalable processes (by ramp.factor) and reruns the step.
	Scalable bool `yaml:"scalable,omitempty" json:"scalable,omitempty" doc:"the generators fleet's unit of growth: multiplied by ramp.factor when a step is generator-fail"`
}

// Terraform configures a fleet provisioned with Terraform.
type Terraform struct {
	Dir      string         `yaml:"dir" json:"dir" schema:"required" doc:"the module directory (template)"`
	Vars     map[string]any `yaml:"vars,omitempty" json:"vars,omitempty" doc:"module variables; every string in them is a template"`
	ScaleVar string         `yaml:"scale_var,omitempty" json:"scale_var,omitempty" doc:"the variable multiplied by ramp.factor when the generators saturate"`
}

// Workload says what load the engine sends.
type Workload struct {
	Engine string `yaml:"engine" json:"engine" enum:"engines" doc:"who generates the load"`
	HTTP   *HTTP  `yaml:"http,omitempty" json:"http,omitempty" doc:"builtin engine: the HTTP request to send"`
	// Arrival is "constant" (default) or "poisson" for the builtin engine.
	Arrival string  `yaml:"arrival,omitempty" json:"arrival,omitempty" enum:"arrivals" doc:"builtin engine: how send times are spaced at the offered rate"`
	Locust  *Locust `yaml:"locust,omitempty" json:"locust,omitempty" doc:"locust engine only"`
	// PubSub, instead of HTTP, makes the builtin engine a publish/subscribe
	// workload: load parameters publishers, subscribers and rate.
	PubSub *PubSub `yaml:"pubsub,omitempty" json:"pubsub,omitempty" doc:"builtin engine: a publish/subscribe workload instead of http"`
}

// PubSub is the builtin engine's publish/subscribe workload: subscribers hold
// Server-Sent Events streams open on Subscribe while publishers POST
// timestamped messages to Publish, and every delivery's delay is measured.
type PubSub struct {
	Publish   string `yaml:"publish" json:"publish" schema:"required" doc:"URL messages are POSTed to (template)"`
	Subscribe string `yaml:"subscribe" json:"subscribe" schema:"required" doc:"Server-Sent Events URL subscribers hold open (template)"`
	// BodyBytes is the size of each published message (0: the smallest
	// message that carries the timestamp and sequence number).
	BodyBytes int `yaml:"body_bytes,omitempty" json:"body_bytes,omitempty" doc:"size of each message (0: the smallest that carries the timestamp)"`
	// Timeout bounds each publish request and each message's delivery
	// (0: 5s); a message not delivered within it counts as lost.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty" doc:"bounds each publish and each delivery (0: 5s)"`
}

// HTTP is the request the builtin engine sends.
type HTTP struct {
	Method  string            `yaml:"method,omitempty" json:"method,omitempty" schema:"nodefault" doc:"HTTP method; POST when body is set, else GET"`
	URL     string            `yaml:"url" json:"url" schema:"required" doc:"an http:// or https:// URL (template)"`
	Body    string            `yaml:"body,omitempty" json:"body,omitempty" doc:"request body (template)"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty" keys:"header" doc:"request headers (templates)"`
	Timeout Duration          `yaml:"timeout,omitempty" json:"timeout,omitempty" doc:"per request; a slower answer is a target error (timeout)"`
	// Insecure skips TLS certificate verification (test targets only).
	Insecure bool `yaml:"insecure,omitempty" json:"insecure,omitempty" doc:"skip TLS certificate verification (test targets only)"`
}

// Locust configures the locust engine.
type Locust struct {
	Locustfile string `yaml:"locustfile,omitempty" json:"locustfile,omitempty" doc:"the locustfile (template)"`
	Host       string `yaml:"host,omitempty" json:"host,omitempty" doc:"the host locust sends to (template)"`
	// Master is the master's web URL (templated from the generators fleet outputs).
	Master string `yaml:"master,omitempty" json:"master,omitempty" doc:"the master's web URL (template)"`
	// Workers is the number of workers the master should have (templated,
	// rendered before every step so that it follows a grown fleet, e.g.
	// "{{ .fleets.generators.size }}"). Empty: the most the master has had.
	Workers string `yaml:"workers,omitempty" json:"workers,omitempty" doc:"the number of workers the master should have (template, e.g. \"{{ .fleets.generators.size }}\")"`
}

// Probe is an independent end-to-end probe run beside the engine.
type Probe struct {
	Kind      string  `yaml:"kind" json:"kind" enum:"probeKinds" schema:"required" doc:"http: GET url; pubsub: subscribe, then publish timestamped messages"`
	URL       string  `yaml:"url,omitempty" json:"url,omitempty" doc:"kind http: the URL probed (template)"`
	Publish   string  `yaml:"publish,omitempty" json:"publish,omitempty" doc:"kind pubsub: the publish URL (template)"`
	Subscribe string  `yaml:"subscribe,omitempty" json:"subscribe,omitempty" doc:"kind pubsub: the SSE URL (template)"`
	Rate      float64 `yaml:"rate,omitempty" json:"rate,omitempty" doc:"probes per second (> 0)"`
	// Expect, for kind http, is a substring the response body must contain.
	Expect string `yaml:"expect,omitempty" json:"expect,omitempty" doc:"kind http: a substring the response body must contain"`
	// Timeout bounds each probe request and, for kind pubsub, the wait for
	// a message's delivery after the hold (0: 2s); later messages are lost.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty" doc:"bounds each probe (0: 2s)"`
}

// Parameter is a load parameter, doubled from Start up to Max.
type Parameter struct {
	Name  string  `yaml:"name" json:"name" enum:"params" schema:"required" doc:"a load parameter of the engine: rate, connections (builtin http); rate, publishers, subscribers (pubsub); users, spawn_rate (locust)"`
	Start float64 `yaml:"start" json:"start" schema:"required" doc:"the value at step 1 (> 0)"`
	Max   float64 `yaml:"max" json:"max" schema:"required" doc:"the highest value (>= start); start = max holds it fixed"`
}

// Ramp shapes the schedule and each step's windows.
type Ramp struct {
	Factor   float64  `yaml:"factor,omitempty" json:"factor,omitempty" doc:"each raise multiplies one parameter by it (> 1)"`
	Order    string   `yaml:"order,omitempty" json:"order,omitempty" enum:"orders" doc:"round-robin: the parameters take turns; sequential: the first goes to its max first"`
	Warmup   Duration `yaml:"warmup,omitempty" json:"warmup,omitempty" doc:"load runs, nothing is judged"`
	Hold     Duration `yaml:"hold,omitempty" json:"hold,omitempty" doc:"the steady-state window gates judge (> 0)"`
	Cooldown Duration `yaml:"cooldown,omitempty" json:"cooldown,omitempty" doc:"pause after a passing step and before each rerun"`
	Confirm  int      `yaml:"confirm,omitempty" json:"confirm,omitempty" doc:"how many times a target-fail step is rerun before it counts"`
	Refine   int      `yaml:"refine,omitempty" json:"refine,omitempty" doc:"bisection attempts between the last pass and the first failure"`
	MaxSteps int      `yaml:"max_steps,omitempty" json:"max_steps,omitempty" doc:"the schedule has at most this many steps"`
}

// Report configures the report formats and upload.
type Report struct {
	Formats []string `yaml:"formats,omitempty" json:"formats,omitempty" enum:"formats" doc:"report files to write; an empty list means all"`
	Upload  string   `yaml:"upload,omitempty" json:"upload,omitempty" doc:"s3://bucket/prefix: the finished run directory is copied there"`
}

// Campaign is a list of variants of the static parameters.
type Campaign struct {
	Variants             []map[string]any `yaml:"variants" json:"variants" schema:"required" doc:"each map overrides static parameters; each variant changes exactly one from the one before"`
	AllowMultipleChanges bool             `yaml:"allow_multiple_changes,omitempty" json:"allow_multiple_changes,omitempty" doc:"let a variant change more than one static parameter"`
	Cost                 []map[string]any `yaml:"cost,omitempty" json:"cost,omitempty" doc:"cost[i].per_hour is variant i's price per hour, for throughput per dollar-hour"`
}

// Duration is a time.Duration written as a Go duration string ("5s", "250ms").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
