package plan

// fieldInfo is what the plan's types do not say about a key, for its JSON
// Schema: a description for editors, whether it must be written, its allowed
// values and its name rule. The types, their yaml keys and the defaults come
// from the code itself (see schema.go); a key missing here is still in the
// schema, without a description.
type fieldInfo struct {
	doc string
	// required: validation refuses a plan without the key (a test deletes
	// each required key from the example plans and expects loadramp to name
	// it).
	required bool
	// noDefault: do not advertise ApplyDefaults' value (it depends on other
	// keys).
	noDefault bool
	// enum names the allowed values in schemaEnums, the lists validation
	// checks against.
	enum string
	// pattern names the rule in schemaPatterns that a map's keys (or, on a
	// string, the value) must match.
	pattern string
}

// schemaFields describe the plan's keys by "GoType.yaml_key". JSONSchema
// fails on an entry that names no key, so a renamed key cannot leave its
// description behind.
var schemaFields = map[string]fieldInfo{
	"Plan.version":          {enum: "version", required: true, doc: "the plan schema version: 1"},
	"Plan.name":             {pattern: "planName", required: true, doc: "names the run directories (<UTC time>-<name>): 1-64 letters, digits, '.', '_', '-'"},
	"Plan.description":      {doc: "free text, printed by loadramp plan"},
	"Plan.fleets":           {pattern: "ident", required: true, doc: "fleet name -> fleet; target (the system under test) is required, generators is the load-generator fleet"},
	"Plan.static":           {doc: "static parameters: fixed for a run, on every report row, .static.NAME in templates; campaign variants override them"},
	"Plan.workload":         {doc: "what load is sent: the builtin engine (http or pubsub) or locust"},
	"Plan.probe":            {doc: "an end-to-end probe beside the load: what one more user feels"},
	"Plan.parameters":       {required: true, doc: "the load parameters to ramp, each doubled (ramp.factor) from start to max in turn"},
	"Plan.ramp":             {doc: "the step schedule and each step's windows"},
	"Plan.gates":            {required: true, doc: "expressions judged on each step's hold, e.g. \"latency.p99 < 100ms\": all must hold for a step to pass"},
	"Plan.generator_health": {doc: "expressions on the generator's own health, e.g. \"generator.lag.p99 < 10ms\": a breach makes the step generator-fail, never a bottleneck; the default checks apply besides (one on the same metric replaces its default)"},
	"Plan.default_checks":   {doc: "turns loadramp's default checks off: the generator's health (lag, starvation, CPU) and that each load parameter was achieved (connections held, rate answered...)"},
	"Plan.abort":            {doc: "expressions checked every second, e.g. \"errors.ratio > 0.5\": one that holds stops the step at once"},
	"Plan.report":           {doc: "report formats and upload"},
	"Plan.campaign":         {doc: "one ramp per variant of the static parameters"},
	"Plan.prometheus":       {doc: "a Prometheus source: /metrics pages to scrape or a server to query, and named metrics for prom.* gates"},

	"DefaultChecks.generator_health": {doc: "false: no default generator health check (generator.lag.p99 < 10ms, generator.starved.ratio < 0.2, generator.cpu < 0.9)"},
	"DefaultChecks.parameters":       {doc: "false: no default check that the load parameters were achieved (for a target that closes every connection on purpose, say)"},

	"Fleet.provider":   {enum: "providers", noDefault: true, doc: "how the fleet is provisioned; local when processes are given"},
	"Fleet.processes":  {doc: "local provider: processes started in order, each ready before the next"},
	"Fleet.outputs":    {pattern: "ident", doc: "values templates read as .fleets.FLEET.NAME (required for a static fleet, e.g. endpoint: http://10.0.0.5:8080)"},
	"Fleet.logs":       {doc: "extra log files scanned for bottleneck signatures (templates)"},
	"Fleet.terraform":  {doc: "terraform provider: the module and its variables"},
	"Fleet.prometheus": {doc: "a Prometheus source of the fleet's hosts"},
	"Fleet.agents":     {doc: "where the fleet's agents (loadramp agent) are: they generate the builtin engine's load on the generators fleet, and observe every step of their hosts; logs are then files on those hosts"},

	"Agents.output":           {pattern: "ident", doc: "the fleet output listing the agents' URLs (a JSON list or object, or URLs separated by commas or spaces); read again after the fleet grows"},
	"Agents.endpoints":        {doc: "agents written in the plan"},
	"Agents.local":            {doc: "local provider: start this many agents on this machine, the fleet's unit of growth"},
	"Agents.ca":               {doc: "PEM file of the CA of https:// agents (default: the agent_ca configuration key, then the system's roots) (template)"},
	"Agents.processes":        {doc: "processes the agents watch on their hosts, by command name (ps -o comm)"},
	"Agents.max_clock_offset": {doc: "refuse an agent whose clock is further than this from loadramp's (0: no bound)"},
	"AgentEndpoint.name":      {pattern: "planName", doc: "the agent's name in findings, steps and messages (default: the URL's host:port)"},
	"AgentEndpoint.url":       {required: true, doc: "http://HOST:PORT or https://HOST:PORT (template)"},

	"Process.name":          {pattern: "planName", required: true, doc: "unique in the fleet; its output goes to <run dir>/<fleet>-<name>.log"},
	"Process.command":       {required: true, doc: "argv (templates); a bare argv[0] is looked up in PATH"},
	"Process.env":           {doc: "added to the inherited environment (templates)"},
	"Process.dir":           {doc: "working directory (template)"},
	"Process.ready":         {doc: "when the process is ready: an http(s):// URL answering 2xx, or tcp://host:port accepting connections (template)"},
	"Process.ready_timeout": {doc: "how long to wait for ready"},
	"Process.files":         {doc: "files written into the run directory before the process starts: relative path -> content (template)"},
	"Process.replicas":      {doc: "how many copies to start"},
	"Process.scalable":      {doc: "the generators fleet's unit of growth: multiplied by ramp.factor when a step is generator-fail"},

	"Terraform.dir":       {required: true, doc: "the module directory (template)"},
	"Terraform.vars":      {doc: "module variables; every string in them is a template"},
	"Terraform.scale_var": {doc: "the variable multiplied by ramp.factor when the generators saturate"},

	"Workload.engine":  {enum: "engines", doc: "who generates the load"},
	"Workload.http":    {doc: "builtin engine: the HTTP request to send, or a weighted mix of requests"},
	"Workload.arrival": {enum: "arrivals", doc: "builtin engine: how send times are spaced at the offered rate"},
	"Workload.locust":  {doc: "locust engine only"},
	"Workload.pubsub":  {doc: "builtin engine: a publish/subscribe workload instead of http"},

	"HTTP.method":   {noDefault: true, doc: "HTTP method; POST when body is set, else GET"},
	"HTTP.url":      {doc: "an http:// or https:// URL (request template); required unless requests is given"},
	"HTTP.body":     {doc: "request body (request template)"},
	"HTTP.headers":  {pattern: "header", doc: "request headers (request templates)"},
	"HTTP.check":    {doc: "the response check: an answer that fails it is an error of class check"},
	"HTTP.timeout":  {doc: "per request; a slower answer is a target error (timeout)"},
	"HTTP.insecure": {doc: "skip TLS certificate verification (test targets only)"},
	"HTTP.requests": {doc: "a weighted mix of named requests, instead of url, method, body, headers and check"},
	"HTTP.feeders":  {pattern: "ident", doc: "name -> a CSV or JSON Lines file whose rows request templates read with {{ feed \"NAME\" \"COLUMN\" }}"},

	"Request.name":    {pattern: "requestName", required: true, doc: "names the request's metrics and gates: request.NAME.latency.p99"},
	"Request.weight":  {doc: "the request's share of the mix relative to the others' (1-1000000)"},
	"Request.method":  {noDefault: true, doc: "HTTP method; POST when body is set, else GET"},
	"Request.url":     {required: true, doc: "an http:// or https:// URL (request template); every request of a mix has the same scheme, host and port"},
	"Request.body":    {doc: "request body (request template)"},
	"Request.headers": {pattern: "header", doc: "request headers (request templates)"},
	"Request.check":   {doc: "the response check: an answer that fails it is an error of class check"},

	"Check.status":        {doc: "the expected status codes; another is an error (class check below 400)"},
	"Check.body_contains": {doc: "text the body (its first 64 KiB) must contain"},
	"Check.json":          {doc: "a field of a JSON body that must exist, and equal equals when given"},
	"JSONCheck.path":      {required: true, doc: "object keys and array indexes joined by dots: data.items.0.id"},
	"JSONCheck.equals":    {doc: "the string, number or boolean the field must equal"},

	"Feeder.file":   {required: true, doc: "the data file, relative to the plan file's directory"},
	"Feeder.format": {enum: "feederFormats", noDefault: true, doc: "csv (a header line, then rows) or jsonl (a JSON object a line); default: from the extension"},
	"Feeder.mode":   {enum: "feederModes", doc: "which row each request reads: circular, random, or unique (each row once; a step that runs out fails)"},

	"PubSub.publish":    {required: true, doc: "publish URL: http(s):// a request per message, ws(s):// a WebSocket per publisher (client template)"},
	"PubSub.subscribe":  {required: true, doc: "subscribe URL: http(s):// Server-Sent Events, ws(s):// a WebSocket per subscriber (client template)"},
	"PubSub.body_bytes": {doc: "size of each message: the marker is padded to it (0: as small as the envelope gets)"},
	"PubSub.timeout":    {doc: "bounds each publish, each subscription's confirmation and each delivery (0: 5s)"},

	"PubSubBus.publish":           {doc: "kind pubsub: the publish URL, http(s):// or ws(s):// (client template)"},
	"PubSubBus.subscribe":         {doc: "kind pubsub: the subscribe URL, http(s):// (SSE) or ws(s):// (client template)"},
	"PubSubBus.publish_method":    {doc: "HTTP publishing: the request method (POST)"},
	"PubSubBus.publish_headers":   {pattern: "header", doc: "headers of every publish request or WebSocket handshake (client templates)"},
	"PubSubBus.body":              {doc: "the envelope of each message; it must print {{ .marker }} (client template)"},
	"PubSubBus.publish_topic":     {doc: "each publisher's topic, seen as .topic (client template of .index)"},
	"PubSubBus.publish_open":      {doc: "WebSocket publishing: messages sent once a connection opens (client templates)"},
	"PubSubBus.subscribe_headers": {pattern: "header", doc: "headers of every subscription request or handshake (client templates)"},
	"PubSubBus.subscribe_topic":   {doc: "each subscriber's topic, seen as .topic (client template of .index)"},
	"PubSubBus.subscribe_open":    {doc: "WebSocket subscriptions: messages sent once a connection opens (client templates)"},
	"PubSubBus.replies":           {doc: "WebSocket: a message starting with a key is answered with its value"},
	"PubSubBus.confirm":           {doc: "when a subscription is live: none (default), first-event, or comment PREFIX"},
	"PubSubBus.settle":            {doc: "confirm none: the wait before the first publish (500ms)"},

	"Locust.locustfile": {doc: "the locustfile (template)"},
	"Locust.host":       {doc: "the host locust sends to (template)"},
	"Locust.master":     {doc: "the master's web URL (template)"},
	"Locust.workers":    {doc: "the number of workers the master should have (template, e.g. \"{{ .fleets.generators.size }}\")"},

	"Probe.kind":    {enum: "probeKinds", required: true, doc: "http: GET url; pubsub: subscribe, then publish marked messages, with the pubsub workload's settings"},
	"Probe.url":     {doc: "kind http: the URL probed (template)"},
	"Probe.rate":    {doc: "probes per second (> 0)"},
	"Probe.expect":  {doc: "kind http: a substring the response body must contain"},
	"Probe.timeout": {doc: "bounds each probe (0: 2s)"},

	"Parameter.name":  {enum: "params", required: true, doc: "a load parameter of the engine: rate, connections (builtin http); rate, publishers, subscribers (pubsub); users, spawn_rate (locust)"},
	"Parameter.start": {required: true, doc: "the value at step 1 (> 0)"},
	"Parameter.max":   {required: true, doc: "the highest value (>= start); start = max holds it fixed"},

	"Ramp.factor":              {doc: "each raise multiplies one parameter by it (> 1)"},
	"Ramp.order":               {enum: "orders", doc: "round-robin: the parameters take turns; sequential: the first goes to its max first"},
	"Ramp.warmup":              {doc: "load runs, nothing is judged"},
	"Ramp.hold":                {doc: "the steady-state window gates judge (> 0)"},
	"Ramp.cooldown":            {doc: "pause after a passing step and before each rerun"},
	"Ramp.confirm":             {doc: "how many times a target-fail step is rerun before it counts"},
	"Ramp.refine":              {doc: "bisection attempts between the last pass and the first failure"},
	"Ramp.max_steps":           {doc: "the schedule has at most this many steps"},
	"Ramp.interference_reruns": {doc: "how many times a step whose generator fell behind because other work took its CPU (steal, other threads), or with half its CPU to spare and nothing measured to say why, is rerun on the same generators"},

	"Report.formats": {enum: "formats", doc: "report files to write; an empty list means all"},
	"Report.upload":  {doc: "s3://bucket/prefix: the finished run directory is copied there"},

	"Campaign.variants":               {required: true, doc: "each map overrides static parameters; each variant changes exactly one from the one before"},
	"Campaign.allow_multiple_changes": {doc: "let a variant change more than one static parameter"},
	"Campaign.cost":                   {doc: "cost[i].per_hour is variant i's price per hour, for throughput per dollar-hour"},

	"Prometheus.scrape":  {doc: "scrape mode: /metrics URLs loadramp scrapes every second (templates)"},
	"Prometheus.query":   {doc: "query mode: a Prometheus server's base URL, e.g. http://prom:9090 (template)"},
	"Prometheus.metrics": {pattern: "promName", doc: "name -> series selector (scrape) or PromQL (query); each is the step metric prom.NAME"},
	"Prometheus.settle":  {doc: "query mode: wait this long after the hold before querying (the server's scrape interval)"},
}
