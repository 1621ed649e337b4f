package infra

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The AWS provider cannot be downloaded here, and there is no account. A
// copy of the provider's release in a plugin directory (awsPluginDir) lets
// every module be initialised from it, validated (TestModulesValidate) and
// planned against a fake of the APIs a plan reads
// (TestAWSModulesPlanAgainstFakeAWS). Without an account nothing is planned
// against AWS itself, or applied. Each module's
// variables.tf and checks.tf (built-in terraform_data only) are planned with
// good and bad values, and its user_data template is rendered by
// templatefile with hostile values, checked by bash -n, and run in a sandbox
// (its own mount and network namespaces, stub apt-get, curl and systemctl)
// to see that the values stay data.

// awsPluginDir is a Terraform plugin directory holding the AWS provider
// (registry.terraform.io/hashicorp/aws/<version>/<os>_<arch>/), from
// LOADRAMP_TF_PLUGIN_DIR, else /opt/tf-plugins; "" when it holds none.
func awsPluginDir() string {
	dir := os.Getenv("LOADRAMP_TF_PLUGIN_DIR")
	if dir == "" {
		dir = "/opt/tf-plugins"
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "registry.terraform.io", "hashicorp", "aws", "*", "*", "terraform-provider-aws*")); len(m) == 0 {
		return ""
	}
	return dir
}

// TestModulesValidate runs terraform init (from the plugin directory, no
// download) and terraform validate on a copy of every module under
// infra/modules. Without the AWS provider the AWS modules are skipped with
// a note; their variables, checks and user_data are still tested below, and
// internal/wiring's contract test parses them without any provider.
func TestModulesValidate(t *testing.T) {
	bin := terraformBin(t)
	plugins := awsPluginDir()
	root := filepath.Join(repoRoot(t), "infra", "modules")
	for _, module := range []string{"local", "local-generators", "aws/target", "aws/generators"} {
		t.Run(module, func(t *testing.T) {
			t.Parallel()
			aws := strings.HasPrefix(module, "aws/")
			if aws && plugins == "" {
				t.Skip("the AWS provider is not in LOADRAMP_TF_PLUGIN_DIR or /opt/tf-plugins (it cannot be downloaded here): not validated")
			}
			dir := t.TempDir()
			files, _ := filepath.Glob(filepath.Join(root, module, "*"))
			for _, f := range files {
				if st, err := os.Stat(f); err != nil || st.IsDir() {
					continue
				}
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600)
			}
			args := []string{"init", "-backend=false", "-input=false", "-no-color"}
			if aws {
				args = append(args, "-plugin-dir="+plugins)
			}
			if out, err := tfCmd(t, bin, dir, args...); err != nil {
				t.Fatalf("terraform init: %v\n%s", err, out)
			}
			out, err := tfCmd(t, bin, dir, "validate", "-json", "-no-color")
			var v struct {
				Valid       bool `json:"valid"`
				Diagnostics []struct {
					Severity, Summary, Detail string
				} `json:"diagnostics"`
			}
			if jerr := json.Unmarshal([]byte(out), &v); jerr != nil {
				t.Fatalf("terraform validate: %v, %v\n%s", err, jerr, out)
			}
			if !v.Valid || err != nil {
				t.Errorf("terraform validate of %s: not valid (%v)", module, err)
			}
			for _, d := range v.Diagnostics {
				// A warning is a deprecation or a check that will fail: as
				// much a defect here as an error.
				t.Errorf("%s: %s: %s", d.Severity, d.Summary, d.Detail)
			}
		})
	}
}

// tfCmd runs the terraform binary in dir and returns its combined output.
func tfCmd(t *testing.T, bin, dir string, args ...string) (string, error) {
	t.Helper()
	cfg := filepath.Join(dir, ".empty.tfrc")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"-chdir=" + dir}, args...)...)
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cfg, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// awsModule is the path of infra/modules/aws/<name>.
func awsModule(t *testing.T, name string) string {
	return filepath.Join(repoRoot(t), "infra", "modules", "aws", name)
}

// planVariables plans the module's variables.tf and checks.tf with vars and
// returns terraform's output, with its line wrapping undone.
func planVariables(t *testing.T, bin, module string, vars map[string]any) (string, error) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"variables.tf", "checks.tf"} {
		b, err := os.ReadFile(filepath.Join(module, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o600)
	}
	b, _ := json.Marshal(vars)
	os.WriteFile(filepath.Join(dir, "test.tfvars.json"), b, 0o600)
	if out, err := tfCmd(t, bin, dir, "init", "-input=false", "-no-color"); err != nil {
		t.Fatalf("terraform init of %s's variables: %v\n%s", module, err, out)
	}
	out, err := tfCmd(t, bin, dir, "plan", "-input=false", "-no-color", "-var-file=test.tfvars.json")
	return strings.Join(strings.Fields(strings.ReplaceAll(out, "│", " ")), " "), err
}

func TestAWSModuleVariables(t *testing.T) {
	bin := terraformBin(t)
	t.Parallel()
	sha := strings.Repeat("ab", 32)
	target := map[string]any{"vpc_id": "vpc-1", "subnet_ids": []string{"subnet-1"}, "operator_cidr": "203.0.113.7/32",
		"app_url": "https://example.com/eventbus", "app_sha256": sha, "loadramp_run_id": "r",
		"agent_url": "https://example.com/loadramp", "agent_sha256": sha, "loadramp_agent_token": "t0ken"}
	generators := map[string]any{"vpc_id": "vpc-1", "subnet_ids": []string{"subnet-1"}, "operator_cidr": "203.0.113.0/24",
		"generator_security_group_id": "sg-1", "locustfile": "from locust import User\n", "loadramp_run_id": "r",
		"agent_url": "https://example.com/loadramp", "agent_sha256": sha}
	with := func(base map[string]any, kv ...any) map[string]any {
		m := maps.Clone(base)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
				continue
			}
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	const image = "ami-0123456789abcdef0"
	for _, c := range []struct {
		name, module string
		vars         map[string]any
		want         string // "" means the plan succeeds
		warn         string // a warning the plan prints
	}{
		{"target", "target", target, "", ""},
		{"anyone", "target", with(target, "operator_cidr", "0.0.0.0/0"), "operator_cidr 0.0.0.0/0 opens the agent port, node_exporter and SSH to the whole internet", ""},
		{"anyone, opted in", "target", with(target, "operator_cidr", "0.0.0.0/0", "allow_any_operator", true), "", ""},
		{"host bits", "target", with(target, "operator_cidr", "203.0.113.7/24"), "written with its network address", ""},
		{"no prefix", "target", with(target, "operator_cidr", "203.0.113.7"), "operator_cidr must be an IPv4 network in CIDR notation", ""},
		{"ipv6", "target", with(target, "operator_cidr", "::/0"), "operator_cidr must be an IPv4 network", ""},
		{"load from the operator", "target", with(target, "load_from_operator", true, "load_balancer", true, "instance_count", 3), "", ""},
		{"no checksum", "target", with(target, "app_sha256", "abc"), "app_sha256 must be 64 lowercase hex digits", ""},
		{"app without checksum", "target", with(target, "app_sha256", nil), "app_url is set without app_sha256", ""},
		{"upper-case checksum", "target", with(target, "app_sha256", strings.ToUpper(sha)), "app_sha256 must be 64 lowercase hex digits", ""},
		{"bad node_exporter checksum", "target", with(target, "node_exporter_sha256", "x"), "node_exporter_sha256 must be 64", ""},
		{"url with a space", "target", with(target, "app_url", "https://example.com/a b"), "app_url must be an http:// or https:// URL", ""},
		{"url with a newline", "target", with(target, "app_url", "https://example.com/a\nb"), "app_url must be an http:// or https:// URL", ""},
		{"not http", "target", with(target, "app_url", "file:///etc/passwd"), "app_url must be an http:// or https:// URL", ""},
		{"nothing serves", "target", with(target, "app_url", nil, "app_sha256", nil), "Nothing would serve the load", ""},
		{"your service from an image", "target", with(target, "app_url", nil, "app_sha256", nil, "ami", image, "nginx", false, "load_port", 8080), "", ""},
		{"your service from user_data", "target", with(target, "app_url", nil, "app_sha256", nil, "app_user_data", "apt-get install -y my-service\n"), "", ""},
		{"not an ami", "target", with(target, "ami", "ami-1"), "ami must be an AMI id", ""},
		{"not a parameter", "target", with(target, "image_parameter", "debian 12"), "image_parameter must be an SSM parameter name", ""},
		{"app args", "target", with(target, "app_args", []string{"--capacity", "8000", "--work=200us"}), "", ""},
		{"app args with a space", "target", with(target, "app_args", []string{"--work 1ms"}), "app_args: each argument must be", ""},
		{"app args with a specifier", "target", with(target, "app_args", []string{"%H"}), "app_args: each argument must be", ""},
		{"nginx on the app's port", "target", with(target, "app_port", 80), "app_port 80 is load_port", ""},
		{"health path", "target", with(target, "health_path", "healthz"), "health_path must be a URL path", ""},
		{"fractional port", "target", with(target, "load_port", 80.5), "load_port must be a whole number from 1 to 65535", ""},
		{"no instances", "target", with(target, "instance_count", 0), "instance_count must be a whole number >= 1", ""},
		{"horizontal without a load balancer", "target", with(target, "instance_count", 2), "", "instance_count is 2 without load_balancer"},
		{"no subnet", "target", with(target, "subnet_ids", []string{}), "subnet_ids must list at least one subnet", ""},
		{"no agent checksum", "target", with(target, "agent_sha256", "abc"), "agent_sha256 must be 64 lowercase hex digits", ""},
		{"agent url not http", "target", with(target, "agent_url", "ftp://example.com/loadramp"), "agent_url must be an http:// or https:// URL", ""},
		{"agent port 0", "target", with(target, "agent_port", 0), "agent_port must be a whole number from 1 to 65535", ""},
		{"generators", "generators", generators, "", ""},
		{"generators for the builtin engine", "generators", with(generators, "locustfile", nil, "workers", 8), "", ""},
		{"generators own image", "generators", with(generators, "ami", image), "", ""},
		{"generators agent url with a newline", "generators", with(generators, "agent_url", "https://example.com/a\nb"), "agent_url must be an http:// or https:// URL", ""},
		{"generators no agent", "generators", with(generators, "agent_url", nil), "agent_url", ""},
		{"generators anyone", "generators", with(generators, "operator_cidr", "0.0.0.0/0"), "opens the agent port, SSH and the Locust web API to the whole internet", ""},
		{"no workers", "generators", with(generators, "workers", 0), "workers must be a whole number >= 1", ""},
		{"blank locustfile", "generators", with(generators, "locustfile", " \n"), "locustfile is only white space", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out, err := planVariables(t, bin, awsModule(t, c.module), c.vars)
			if c.want == "" {
				if err != nil {
					t.Fatalf("plan refused good values: %v\n%s", err, out)
				}
				if c.warn != "" && !strings.Contains(out, c.warn) {
					t.Errorf("plan does not warn %q:\n%s", c.warn, out)
				}
				if c.warn == "" && strings.Contains(out, "Warning: Check block assertion failed") {
					t.Errorf("plan warns:\n%s", out)
				}
				return
			}
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("plan: %v, want an error saying %q:\n%s", err, c.want, out)
			}
		})
	}
}

// templateKeys are the names a module's main.tf passes to templatefile for
// its user_data, so that the test renders what the module renders.
func templateKeys(t *testing.T, module string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(module, "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	calls := regexp.MustCompile(`(?s)templatefile\("\$\{path\.module\}/user_data\.sh\.tftpl", \{(.*?)\}\)`).FindAllSubmatch(b, -1)
	if len(calls) == 0 {
		t.Fatalf("%s/main.tf: no templatefile call for user_data", module)
	}
	var keys []string
	for _, m := range regexp.MustCompile(`(?m)^\s*(\w+)\s*=`).FindAllSubmatch(calls[0][1], -1) {
		keys = append(keys, string(m[1]))
	}
	slices.Sort(keys)
	for _, c := range calls[1:] {
		var other []string
		for _, m := range regexp.MustCompile(`(?m)^\s*(\w+)\s*=`).FindAllSubmatch(c[1], -1) {
			other = append(other, string(m[1]))
		}
		if slices.Sort(other); !slices.Equal(other, keys) {
			t.Fatalf("%s/main.tf: templatefile calls pass %v and %v", module, keys, other)
		}
	}
	return keys
}

// renderTemplate renders a module's user_data template with vars through
// terraform's templatefile, after checking that vars are the names the
// module passes.
func renderTemplate(t *testing.T, bin, module string, vars map[string]any) string {
	t.Helper()
	if want, got := templateKeys(t, module), slices.Sorted(maps.Keys(vars)); !slices.Equal(want, got) {
		t.Fatalf("the test renders with %v, the module with %v", got, want)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.tf"), []byte(`variable "template" {
  type = string
}

variable "vars" {
  type = any
}

output "rendered" {
  value = templatefile(var.template, var.vars)
}
`), 0o600)
	b, _ := json.Marshal(map[string]any{"template": filepath.Join(module, "user_data.sh.tftpl"), "vars": vars})
	os.WriteFile(filepath.Join(dir, "test.tfvars.json"), b, 0o600)
	for _, args := range [][]string{{"init", "-input=false", "-no-color"}, {"apply", "-input=false", "-no-color", "-auto-approve", "-var-file=test.tfvars.json"}} {
		if out, err := tfCmd(t, bin, dir, args...); err != nil {
			t.Fatalf("terraform %s: %v\n%s", args[0], err, out)
		}
	}
	cmd := exec.Command(bin, "-chdir="+dir, "output", "-raw", "rendered")
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+filepath.Join(dir, ".empty.tfrc"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("terraform output: %v", err)
	}
	return string(out)
}

// sandbox is a directory of stubs and fixtures bound to /mnt inside the
// namespaces a rendered script runs in.
type sandbox struct {
	dir string
}

// stubs record their arguments under out/calls (NUL between arguments, RS
// after each call): apt-get, systemctl and sysctl do
// nothing else; curl serves fixtures/<n>.body for the URL in fixtures/<n>.url.
const sandboxStubs = `#!/bin/bash
name=$(basename "$0")
printf '%s\0' "$name" "$@" >>/mnt/out/calls
printf '\036' >>/mnt/out/calls # one call a record
[ "$name" = curl ] || exit 0
out= url=
while [ $# -gt 0 ]; do
	case $1 in
	-o) out=$2; shift 2 ;;
	-*) shift ;;
	*) url=$1; shift ;;
	esac
done
for f in /mnt/fixtures/*.url; do
	if [ "$(cat "$f")" = "$url" ]; then
		cp "${f%.url}.body" "$out"
		exit 0
	fi
done
echo "curl stub: no fixture for the URL" >&2
exit 22
`

// sandboxRun runs script as root in new mount and network namespaces, with
// tmpfs over the directories user_data writes and the stubs first in PATH,
// then copies what it wrote to out/root.
const sandboxRun = `set -eu
mount --bind "$SANDBOX" /mnt
for d in /tmp /usr/local/bin /etc/systemd/system /etc/nginx /opt; do mount -t tmpfs tmpfs "$d"; done
mkdir -p /etc/nginx/conf.d /etc/nginx/sites-enabled
printf 'user www-data;\nevents {\n\tworker_connections 768;\n}\n' >/etc/nginx/nginx.conf
: >/etc/nginx/sites-enabled/default
set +e
PATH=/mnt/stubs:$PATH bash /mnt/user_data.sh >/mnt/out/stdout 2>/mnt/out/stderr
echo $? >/mnt/out/rc
mkdir -p /mnt/out/root/etc /mnt/out/root/usr/local
cp -a /usr/local/bin /mnt/out/root/usr/local/
cp -a /etc/systemd /etc/nginx /mnt/out/root/etc/
cp -a /opt /mnt/out/root/
`

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running user_data in a sandbox needs root (mount namespaces)")
	}
	if err := exec.Command("unshare", "--mount", "--net", "--fork", "--propagation", "private", "true").Run(); err != nil {
		t.Skipf("no mount and network namespaces: %v", err)
	}
	s := &sandbox{dir: t.TempDir()}
	for _, d := range []string{"stubs", "fixtures", "out"} {
		os.Mkdir(filepath.Join(s.dir, d), 0o755)
	}
	for _, name := range []string{"apt-get", "curl", "systemctl", "sysctl"} {
		if err := os.WriteFile(filepath.Join(s.dir, "stubs", name), []byte(sandboxStubs), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// serve makes the curl stub answer url with body; it returns body's sha256.
func (s *sandbox) serve(t *testing.T, name, url string, body []byte) string {
	t.Helper()
	os.WriteFile(filepath.Join(s.dir, "fixtures", name+".url"), []byte(url), 0o644)
	os.WriteFile(filepath.Join(s.dir, "fixtures", name+".body"), body, 0o644)
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// marker is a file a hostile value tries to create, as seen inside (/mnt)
// and outside the sandbox.
func (s *sandbox) marker(name string) (inside, outside string) {
	return "/mnt/out/pwned-" + name, filepath.Join(s.dir, "out", "pwned-"+name)
}

// run runs script in the sandbox and returns its exit code.
func (s *sandbox) run(t *testing.T, script string) int {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, "user_data.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--mount", "--net", "--fork", "--propagation", "private", "bash", "-c", sandboxRun)
	cmd.Env = append(os.Environ(), "SANDBOX="+s.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sandbox: %v\n%s", err, out)
	}
	rc := strings.TrimSpace(s.read("rc"))
	if rc != "0" {
		t.Logf("user_data exited %s; stderr:\n%s", rc, s.read("stderr"))
	}
	if rc == "0" {
		return 0
	}
	return 1
}

// read returns a file written under out/.
func (s *sandbox) read(rel string) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "out", rel))
	return string(b)
}

// calls returns the stubs' calls, each as its argv.
func (s *sandbox) calls() [][]string {
	var calls [][]string
	for _, line := range strings.Split(s.read("calls"), "\x1e") {
		if line = strings.TrimSuffix(line, "\x00"); line != "" {
			calls = append(calls, strings.Split(line, "\x00"))
		}
	}
	return calls
}

// curled returns the URLs curl was asked for, in order.
func (s *sandbox) curled() []string {
	var urls []string
	for _, c := range s.calls() {
		if c[0] == "curl" {
			urls = append(urls, c[len(c)-1])
		}
	}
	return urls
}

// enabled returns the services systemctl enable was asked for, in order.
func (s *sandbox) enabled() []string {
	var units []string
	for _, c := range s.calls() {
		if len(c) > 2 && c[0] == "systemctl" && c[1] == "enable" {
			for _, u := range c[2:] {
				if !strings.HasPrefix(u, "-") {
					units = append(units, u)
				}
			}
		}
	}
	return units
}

func bashSyntax(t *testing.T, script string) {
	t.Helper()
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s\n--- script ---\n%s", err, out, script)
	}
}

// nodeExporterTarball is a release-shaped tarball holding a node_exporter
// script.
func nodeExporterTarball(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	body := []byte("#!/bin/sh\necho node_exporter\n")
	tw.WriteHeader(&tar.Header{Name: "node_exporter-1.8.2.linux-amd64/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "node_exporter-1.8.2.linux-amd64/node_exporter", Mode: 0o755, Size: int64(len(body))})
	tw.Write(body)
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestAWSTargetUserDataKeepsHostileValuesData(t *testing.T) {
	bin := terraformBin(t)
	t.Parallel()
	s := newSandbox(t)
	var inside [4]string
	var outside [4]string
	for i := range inside {
		inside[i], outside[i] = s.marker("target-" + string(rune('a'+i)))
	}
	// Everything a shell or a heredoc could take for code: quotes, a
	// command substitution, a backtick, a newline, a heredoc delimiter.
	appURL := "https://example.com/bus'\"$(touch " + inside[0] + ")`touch " + inside[1] + "`;x"
	neURL := "https://example.com/ne?a=1&b=2'\nUNIT\ntouch " + inside[2] + "\n$(touch " + inside[3] + ")"
	app := []byte("#!/bin/sh\necho eventbus\n")
	appSum := s.serve(t, "app", appURL, app)
	neSum := s.serve(t, "ne", neURL, nodeExporterTarball(t))
	agentSum := s.serve(t, "agent", agentURL, agentBinary)
	vars := targetVars(map[string]any{"app_url": appURL, "app_sha256": appSum, "app_args": []string{"--capacity", "8000"},
		"node_exporter_url": neURL, "node_exporter_sha256": neSum, "agent_sha256": agentSum})
	script := renderTemplate(t, bin, awsModule(t, "target"), vars)
	bashSyntax(t, script)
	for _, v := range []string{appURL, neURL, "touch", agentToken} {
		if strings.Contains(script, v) {
			t.Errorf("the rendered script holds %q in clear", v)
		}
	}
	if rc := s.run(t, script); rc != 0 {
		t.Fatalf("user_data failed")
	}
	for i := range outside {
		if _, err := os.Stat(outside[i]); err == nil {
			t.Errorf("a command inside a URL ran: %s exists", inside[i])
		}
	}
	// The agent first: it answers while the rest installs.
	if urls := s.curled(); !slices.Equal(urls, []string{agentURL, neURL, appURL}) {
		t.Errorf("curl fetched %q, want the three URLs each as one argument, the agent's first", urls)
	}
	if got := s.enabled(); !slices.Equal(got, []string{"loadramp-agent", "node_exporter", "eventbus", "nginx"}) {
		t.Errorf("services enabled %v, want the agent, node_exporter, the app, then nginx", got)
	}
	checkAgentInstalled(t, s)
	if got := s.read("root/usr/local/bin/eventbus"); got != string(app) {
		t.Errorf("installed app %q, want the download", got)
	}
	if got := s.read("root/usr/local/bin/node_exporter"); !strings.Contains(got, "echo node_exporter") {
		t.Errorf("node_exporter not installed: %q", got)
	}
	unit := s.read("root/etc/systemd/system/eventbus.service")
	if !strings.Contains(unit, "ExecStart=/usr/local/bin/eventbus --listen 127.0.0.1:8080 --capacity 8000\n") || !strings.Contains(unit, "LimitNOFILE=65536\n") {
		t.Errorf("eventbus.service:\n%s", unit)
	}
	conf := s.read("root/etc/nginx/nginx.conf")
	if !strings.Contains(conf, "worker_connections 16384;") || !strings.HasPrefix(conf, "worker_rlimit_nofile 65536;") {
		t.Errorf("nginx.conf:\n%s", conf)
	}
	if lr := s.read("root/etc/nginx/conf.d/loadramp.conf"); !strings.Contains(lr, "server 127.0.0.1:8080;") || !strings.Contains(lr, "listen 80 backlog=4096;") {
		t.Errorf("loadramp.conf:\n%s", lr)
	}

	// A download that does not match its checksum is refused, and nothing
	// is installed from it.
	bad := newSandbox(t)
	bad.serve(t, "agent", agentURL, agentBinary)
	bad.serve(t, "app", appURL, []byte("#!/bin/sh\necho tampered\n"))
	bad.serve(t, "ne", neURL, nodeExporterTarball(t))
	if rc := bad.run(t, script); rc == 0 {
		t.Errorf("user_data accepted an app whose sha256 does not match")
	}
	if got := bad.read("root/usr/local/bin/eventbus"); got != "" {
		t.Errorf("the tampered app was installed: %q", got)
	}
	if !strings.Contains(bad.read("stderr"), "did NOT match") {
		t.Errorf("sha256sum's refusal is not in the log:\n%s", bad.read("stderr"))
	}
	// So is a tampered agent.
	badAgent := newSandbox(t)
	badAgent.serve(t, "app", appURL, app)
	badAgent.serve(t, "ne", neURL, nodeExporterTarball(t))
	badAgent.serve(t, "agent", agentURL, []byte("#!/bin/sh\necho tampered agent\n"))
	if rc := badAgent.run(t, script); rc == 0 {
		t.Errorf("user_data accepted an agent whose sha256 does not match")
	}
	if got := badAgent.read("root/usr/local/bin/loadramp"); got != "" {
		t.Errorf("the tampered agent was installed: %q", got)
	}
}

// targetVars are the target's template variables: the module's defaults,
// the test's agent, and over.
func targetVars(over map[string]any) map[string]any {
	vars := map[string]any{"load_port": 80, "app_port": 8080, "nginx": true, "app_url": "", "app_sha256": "", "app_args": []string{},
		"app_user_data": "", "node_exporter_url": "", "node_exporter_sha256": strings.Repeat("0", 64), "nofile": 65536,
		"nginx_worker_conns": 16384, "agent_url": agentURL, "agent_sha256": "", "agent_port": 7070, "agent_token": agentToken}
	maps.Copy(vars, over)
	return vars
}

// The user's own service: from app_user_data (run as written, as root,
// once the agent is up), or from the image (nothing installed but the agent
// and nginx); without nginx the bus serves the load port itself.
func TestAWSTargetUserDataYourService(t *testing.T) {
	bin := terraformBin(t)
	t.Parallel()
	t.Run("app_user_data", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		sum := s.serve(t, "agent", agentURL, agentBinary)
		in, out := s.marker("your-service")
		// Your script is code: it runs, quotes, heredocs and all.
		fragment := "#!/bin/bash\nset -eu\ncat >" + in + " <<'EOF'\nmy service's unit, $(not expanded)\nEOF\nsystemctl enable --now my-service\n"
		script := renderTemplate(t, bin, awsModule(t, "target"), targetVars(map[string]any{"app_user_data": fragment, "agent_sha256": sum}))
		bashSyntax(t, script)
		if rc := s.run(t, script); rc != 0 {
			t.Fatal("user_data failed")
		}
		if b, err := os.ReadFile(out); err != nil || string(b) != "my service's unit, $(not expanded)\n" {
			t.Errorf("app_user_data did not run as written: %q %v", b, err)
		}
		if got := s.read("root/opt/loadramp/app-user-data.sh"); got != fragment {
			t.Errorf("app-user-data.sh %q, want the fragment", got)
		}
		if got := s.enabled(); !slices.Equal(got, []string{"loadramp-agent", "my-service", "nginx"}) {
			t.Errorf("services enabled %v, want the agent, your service, then nginx", got)
		}
		if s.read("root/etc/systemd/system/eventbus.service") != "" {
			t.Error("the bundled bus was installed beside your service")
		}
		checkAgentInstalled(t, s)
	})
	t.Run("image without nginx", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		sum := s.serve(t, "agent", agentURL, agentBinary)
		script := renderTemplate(t, bin, awsModule(t, "target"), targetVars(map[string]any{"nginx": false, "load_port": 8080, "agent_sha256": sum}))
		bashSyntax(t, script)
		if rc := s.run(t, script); rc != 0 {
			t.Fatal("user_data failed")
		}
		if got := s.enabled(); !slices.Equal(got, []string{"loadramp-agent"}) {
			t.Errorf("services enabled %v, want the agent only: the image runs your service", got)
		}
		for _, c := range s.calls() {
			if c[0] == "apt-get" {
				t.Errorf("user_data installed packages on your image: %q", c)
			}
		}
		checkAgentInstalled(t, s)
	})
	t.Run("bus without nginx", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		sum := s.serve(t, "agent", agentURL, agentBinary)
		appSum := s.serve(t, "app", "https://example.com/eventbus", []byte("#!/bin/sh\n"))
		script := renderTemplate(t, bin, awsModule(t, "target"), targetVars(map[string]any{"nginx": false, "load_port": 8080,
			"app_url": "https://example.com/eventbus", "app_sha256": appSum, "agent_sha256": sum}))
		if rc := s.run(t, script); rc != 0 {
			t.Fatal("user_data failed")
		}
		if unit := s.read("root/etc/systemd/system/eventbus.service"); !strings.Contains(unit, "ExecStart=/usr/local/bin/eventbus --listen 0.0.0.0:8080\n") {
			t.Errorf("eventbus.service:\n%s", unit)
		}
		if got := s.enabled(); !slices.Equal(got, []string{"loadramp-agent", "eventbus"}) {
			t.Errorf("services enabled %v", got)
		}
	})
}

// The agent every AWS host runs: a binary (here a script) from a URL with
// shell in it, a token with quotes and a newline.
var (
	agentURL    = "https://example.com/loadramp'$(touch /tmp/pwned-agent)`id`"
	agentBinary = []byte("#!/bin/sh\necho loadramp agent\n")
	agentToken  = "tok'en\"$(id)`id`\nSECOND"
)

// checkAgentInstalled checks that user_data installed the agent's binary,
// its token in a root-only file, and its systemd unit, and traced no token.
func checkAgentInstalled(t *testing.T, s *sandbox) {
	t.Helper()
	if got := s.read("root/usr/local/bin/loadramp"); got != string(agentBinary) {
		t.Errorf("installed agent %q, want the download", got)
	}
	if got := s.read("root/opt/loadramp/agent.token"); got != agentToken+"\n" {
		t.Errorf("agent.token %q, want the token", got)
	}
	if st, err := os.Stat(filepath.Join(s.dir, "out", "root", "opt", "loadramp", "agent.token")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("agent.token mode: %v %v, want 0600", st, err)
	}
	unit := s.read("root/etc/systemd/system/loadramp-agent.service")
	if !strings.Contains(unit, "ExecStart=/usr/local/bin/loadramp agent --listen 0.0.0.0:7070 --token-file /opt/loadramp/agent.token --name %H\n") {
		t.Errorf("loadramp-agent.service:\n%s", unit)
	}
	enabled := false
	for _, c := range s.calls() {
		enabled = enabled || slices.Equal(c, []string{"systemctl", "enable", "--now", "loadramp-agent"})
	}
	if !enabled {
		t.Error("user_data did not enable the agent")
	}
	for _, f := range []string{"stdout", "stderr"} {
		if strings.Contains(s.read(f), "SECOND") || strings.Contains(s.read(f), "tok'en") {
			t.Errorf("user_data's %s holds the token", f)
		}
	}
}

func TestAWSGeneratorsUserDataKeepsTheLocustfileData(t *testing.T) {
	bin := terraformBin(t)
	t.Parallel()
	module := awsModule(t, "generators")
	for _, role := range []string{"master", "worker"} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			in1, out1 := s.marker(role + "-1")
			in2, out2 := s.marker(role + "-2")
			in3, out3 := s.marker(role + "-3")
			// A line PY ended the old heredoc; the rest ran as root.
			locustfile := "from locust import HttpUser, task\n" +
				"PY\ntouch " + in1 + "\n'; touch " + in2 + " #\n$(touch " + in3 + ")\n`id`\nUNIT\nEOF\n" +
				"x = \"\\\\ é ${HOME} %{ if true }\"\n" +
				"no newline at the end"
			master := ""
			if role == "worker" {
				master = "10.0.0.5"
			}
			sum := s.serve(t, "agent", agentURL, agentBinary)
			script := renderTemplate(t, bin, module, map[string]any{"role": role, "master_ip": master, "locustfile": locustfile,
				"agent_url": agentURL, "agent_sha256": sum, "agent_port": 7070, "agent_token": agentToken})
			bashSyntax(t, script)
			if strings.Contains(script, "touch") || strings.Contains(script, "SECOND") {
				t.Errorf("the rendered script holds the locustfile or the token in clear")
			}
			if rc := s.run(t, script); rc != 0 {
				t.Fatal("user_data failed")
			}
			checkAgentInstalled(t, s)
			for _, m := range []string{out1, out2, out3} {
				if _, err := os.Stat(m); err == nil {
					t.Errorf("a line of the locustfile ran: %s exists", m)
				}
			}
			if got := s.read("root/opt/loadramp/locustfile.py"); got != locustfile {
				t.Errorf("locustfile.py differs from the plan's:\n got %q\nwant %q", got, locustfile)
			}
			if role == "master" {
				// Workers join the master: its command names no worker
				// count, so growing the fleet leaves it alone.
				if unit := s.read("root/etc/systemd/system/locust.service"); !strings.Contains(unit,
					"ExecStart=/usr/bin/locust --master -f /opt/loadramp/locustfile.py --web-host 0.0.0.0\n") || strings.Contains(unit, "expect-workers") {
					t.Errorf("locust.service:\n%s", unit)
				}
			} else if unit := s.read("root/etc/systemd/system/locust-worker-1.service"); !strings.Contains(unit, "--master-host 10.0.0.5\n") {
				t.Errorf("locust-worker-1.service:\n%s", unit)
			}
		})
	}
	t.Run("hostile master address", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		in, out := s.marker("master-ip")
		sum := s.serve(t, "agent", agentURL, agentBinary)
		script := renderTemplate(t, bin, module, map[string]any{"role": "worker", "master_ip": "10.0.0.5\nExecStartPre=/bin/touch " + in, "locustfile": "x\n",
			"agent_url": agentURL, "agent_sha256": sum, "agent_port": 7070, "agent_token": agentToken})
		bashSyntax(t, script)
		if rc := s.run(t, script); rc == 0 {
			t.Error("user_data accepted a master address that is not one")
		}
		if _, err := os.Stat(out); err == nil {
			t.Error("the master address wrote a unit directive that ran")
		}
		if strings.Contains(s.read("root/etc/systemd/system/locust-worker-1.service"), "ExecStartPre") {
			t.Error("the master address wrote a unit directive")
		}
	})
	// Without a locustfile a generator host runs the agent only: the
	// builtin engine's share of each step.
	t.Run("builtin engine", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		sum := s.serve(t, "agent", agentURL, agentBinary)
		script := renderTemplate(t, bin, module, map[string]any{"role": "worker", "master_ip": "", "locustfile": "",
			"agent_url": agentURL, "agent_sha256": sum, "agent_port": 7070, "agent_token": agentToken})
		bashSyntax(t, script)
		if rc := s.run(t, script); rc != 0 {
			t.Fatal("user_data failed")
		}
		checkAgentInstalled(t, s)
		if got := s.enabled(); !slices.Equal(got, []string{"loadramp-agent"}) {
			t.Errorf("services enabled %v, want the agent only", got)
		}
		for _, c := range s.calls() {
			if c[0] == "apt-get" {
				t.Errorf("user_data installed packages without Locust: %q", c)
			}
		}
	})
}

// TestAWSModulesSecurityInvariants reads the AWS modules' resources (HCL,
// no provider) and checks what must stay on whatever else changes: every
// instance requires IMDSv2 tokens and has an encrypted root volume, and a
// security group admits a CIDR only if it is operator_cidr (the agent port,
// node_exporter, SSH, Locust's web API, and the load port only when asked),
// never the whole internet; the rest of its ingress names security groups.
func TestAWSModulesSecurityInvariants(t *testing.T) {
	for _, module := range []string{"target", "generators"} {
		t.Run(module, func(t *testing.T) {
			files, _ := filepath.Glob(filepath.Join(awsModule(t, module), "*.tf"))
			instances, groups := 0, 0
			for _, f := range files {
				src, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				file, diags := hclsyntax.ParseConfig(src, f, hcl.InitialPos)
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				text := func(e hclsyntax.Expression) string {
					return strings.Join(strings.Fields(string(e.Range().SliceBytes(src))), " ")
				}
				for _, b := range file.Body.(*hclsyntax.Body).Blocks {
					if b.Type != "resource" || len(b.Labels) != 2 {
						continue
					}
					name := strings.Join(b.Labels, ".")
					switch b.Labels[0] {
					case "aws_instance":
						instances++
						if got := nestedAttr(b.Body, "metadata_options", "http_tokens", text); got != `"required"` {
							t.Errorf("%s: metadata_options.http_tokens = %s, want \"required\" (IMDSv2)", name, got)
						}
						if got := nestedAttr(b.Body, "root_block_device", "encrypted", text); got != "true" {
							t.Errorf("%s: root_block_device.encrypted = %s, want true", name, got)
						}
					case "aws_security_group":
						groups++
						for _, in := range b.Body.Blocks {
							body, forEach := in.Body, ""
							switch {
							case in.Type == "ingress":
							case in.Type == "dynamic" && len(in.Labels) == 1 && in.Labels[0] == "ingress":
								if fe, ok := in.Body.Attributes["for_each"]; ok {
									forEach = text(fe.Expr)
								}
								body = nil
								for _, c := range in.Body.Blocks {
									if c.Type == "content" {
										body = c.Body
									}
								}
								if body == nil {
									t.Errorf("%s: a dynamic ingress without content", name)
									continue
								}
							default:
								continue
							}
							if a, ok := body.Attributes["ipv6_cidr_blocks"]; ok {
								t.Errorf("%s: ingress from %s", name, text(a.Expr))
							}
							a, ok := body.Attributes["cidr_blocks"]
							if !ok {
								if _, sg := body.Attributes["security_groups"]; !sg {
									if _, self := body.Attributes["self"]; !self {
										t.Errorf("%s: an ingress from neither a CIDR nor a security group", name)
									}
								}
								continue
							}
							switch cidr := text(a.Expr); {
							case cidr == "[var.operator_cidr]":
							case cidr == "[ingress.value]" && strings.Contains(forEach, "[var.operator_cidr]") && !strings.Contains(forEach, "0.0.0.0"):
							default:
								t.Errorf("%s: an ingress from %s (for_each %q); a CIDR ingress may only be operator_cidr", name, cidr, forEach)
							}
						}
					}
				}
			}
			if instances == 0 || groups == 0 {
				t.Errorf("%d instances and %d security groups found: the test reads nothing", instances, groups)
			}
		})
	}
}

// nestedAttr is the source text of attribute attr of the first nested block
// of type block in body ("" when there is none).
func nestedAttr(body *hclsyntax.Body, block, attr string, text func(hclsyntax.Expression) string) string {
	for _, b := range body.Blocks {
		if b.Type == block {
			if a, ok := b.Body.Attributes[attr]; ok {
				return text(a.Expr)
			}
		}
	}
	return ""
}

// fakeAWS is a fake of the two AWS read APIs the modules call while
// planning: SSM GetParameter (the default image) and EC2
// DescribeInstanceTypes (the generators' CPUs). Anything else is refused and
// recorded, so a module that starts calling another API at plan time is seen.
type fakeAWS struct {
	mu         sync.Mutex
	parameters []string // names asked of GetParameter
	types      []string // instance types asked of DescribeInstanceTypes
	unexpected []string
}

const fakeImage = "ami-0fa4e0000000000aa"

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if target := r.Header.Get("X-Amz-Target"); target == "AmazonSSM.GetParameter" {
		var in struct{ Name string }
		json.Unmarshal(body, &in)
		f.parameters = append(f.parameters, in.Name)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{
			"Name": in.Name, "Type": "String", "Value": fakeImage, "Version": 1, "DataType": "aws:ec2:image",
			"ARN": "arn:aws:ssm:us-east-1::parameter" + in.Name}})
		return
	} else if target != "" {
		f.unexpected = append(f.unexpected, target)
		http.Error(w, `{"__type":"UnknownOperationException"}`, http.StatusBadRequest)
		return
	}
	form, _ := url.ParseQuery(string(body))
	if form.Get("Action") == "DescribeInstanceTypes" {
		f.types = append(f.types, form.Get("InstanceType.1"))
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<DescribeInstanceTypesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>fake</requestId><instanceTypeSet><item><instanceType>%s</instanceType><currentGeneration>true</currentGeneration><vCpuInfo><defaultVCpus>2</defaultVCpus><defaultCores>1</defaultCores><defaultThreadsPerCore>2</defaultThreadsPerCore></vCpuInfo><memoryInfo><sizeInMiB>4096</sizeInMiB></memoryInfo><ebsInfo><encryptionSupport>supported</encryptionSupport></ebsInfo><networkInfo><networkPerformance>Up to 12.5 Gigabit</networkPerformance></networkInfo><placementGroupInfo><supportedStrategies><item>cluster</item></supportedStrategies></placementGroupInfo><processorInfo><supportedArchitectures><item>x86_64</item></supportedArchitectures></processorInfo></item></instanceTypeSet></DescribeInstanceTypesResponse>`, form.Get("InstanceType.1"))
		return
	}
	f.unexpected = append(f.unexpected, r.Method+" "+r.URL.Path+" "+form.Get("Action"))
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprint(w, `<Response><Errors><Error><Code>InvalidAction</Code><Message>not faked</Message></Error></Errors><RequestID>fake</RequestID></Response>`)
}

// planAgainstFake serves a new fakeAWS, copies module into a directory with a
// provider block whose endpoints are the fake, plans it with vars, and
// returns the fake (what it was asked) and the plan as terraform show -json
// prints it, or terraform's output when the plan fails.
func planAgainstFake(t *testing.T, bin, plugins, module string, vars map[string]any) (*fakeAWS, map[string]any, string, error) {
	t.Helper()
	fake := &fakeAWS{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	endpoint := srv.URL
	dir := t.TempDir()
	files, _ := filepath.Glob(filepath.Join(module, "*"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600)
		}
	}
	provider := `provider "aws" {
  region                      = "us-east-1"
  access_key                  = "fake"
  secret_key                  = "fake"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {
    ssm   = "` + endpoint + `"
    ec2   = "` + endpoint + `"
    elbv2 = "` + endpoint + `"
    sts   = "` + endpoint + `"
  }
}
`
	os.WriteFile(filepath.Join(dir, "fake_provider.tf"), []byte(provider), 0o600)
	b, _ := json.Marshal(vars)
	os.WriteFile(filepath.Join(dir, "test.tfvars.json"), b, 0o600)
	if out, err := tfCmd(t, bin, dir, "init", "-backend=false", "-input=false", "-no-color", "-plugin-dir="+plugins); err != nil {
		t.Fatalf("terraform init: %v\n%s", err, out)
	}
	if out, err := tfCmd(t, bin, dir, "plan", "-input=false", "-no-color", "-var-file=test.tfvars.json", "-out=plan.bin"); err != nil {
		return fake, nil, strings.Join(strings.Fields(strings.ReplaceAll(out, "│", " ")), " "), err
	}
	out, err := tfCmd(t, bin, dir, "show", "-json", "plan.bin")
	if err != nil {
		t.Fatalf("terraform show: %v\n%s", err, out)
	}
	var plan map[string]any
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("terraform show -json: %v", err)
	}
	return fake, plan, "", nil
}

// planned returns the planned resources of type typ, by address.
func planned(plan map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	root, _ := plan["planned_values"].(map[string]any)["root_module"].(map[string]any)
	rs, _ := root["resources"].([]any)
	for _, r := range rs {
		m := r.(map[string]any)
		if m["type"] == typ && m["mode"] == "managed" {
			out[m["address"].(string)], _ = m["values"].(map[string]any)
		}
	}
	return out
}

// plannedOutput returns an output's planned value (nil when unknown).
func plannedOutput(plan map[string]any, name string) any {
	oc, _ := plan["output_changes"].(map[string]any)[name].(map[string]any)
	return oc["after"]
}

// TestAWSModulesPlanAgainstFakeAWS plans each AWS module with the real AWS
// provider against fakeAWS (nothing is created: a plan reads only the image
// parameter and the instance type) and checks what would be created.
func TestAWSModulesPlanAgainstFakeAWS(t *testing.T) {
	bin := terraformBin(t)
	plugins := awsPluginDir()
	if plugins == "" {
		t.Skip("the AWS provider is not in LOADRAMP_TF_PLUGIN_DIR or /opt/tf-plugins: not planned")
	}
	sha := strings.Repeat("ab", 32)
	t.Run("target behind a load balancer", func(t *testing.T) {
		t.Parallel()
		fake, plan, out, err := planAgainstFake(t, bin, plugins, awsModule(t, "target"), map[string]any{
			"vpc_id": "vpc-1", "subnet_ids": []string{"subnet-a", "subnet-b"}, "operator_cidr": "10.0.1.25/32",
			"app_url": "https://example.com/eventbus", "app_sha256": sha, "loadramp_run_id": "run-1",
			"agent_url": "https://example.com/loadramp", "agent_sha256": sha, "loadramp_agent_token": "t0ken",
			"instance_count": 3, "load_balancer": true})
		if err != nil {
			t.Fatalf("plan: %v\n%s", err, out)
		}
		fake.mu.Lock()
		if strings.Join(fake.parameters, ",") != "/aws/service/debian/release/12/latest/amd64" || len(fake.unexpected) > 0 {
			t.Errorf("GetParameter %v, unexpected calls %v", fake.parameters, fake.unexpected)
		}
		fake.mu.Unlock()
		if img := planned(plan, "terraform_data")["terraform_data.image"]; img["input"] != fakeImage {
			t.Errorf("the image: %v, want the parameter's %s", img["input"], fakeImage)
		}
		instances := planned(plan, "aws_instance")
		if len(instances) != 3 {
			t.Fatalf("%d instances planned, want 3", len(instances))
		}
		subnets := map[any]int{}
		for addr, v := range instances {
			subnets[v["subnet_id"]]++
			md := v["metadata_options"].([]any)[0].(map[string]any)
			rv := v["root_block_device"].([]any)[0].(map[string]any)
			if md["http_tokens"] != "required" || rv["encrypted"] != true || v["monitoring"] != true {
				t.Errorf("%s: metadata %v, root volume %v, monitoring %v", addr, md, rv, v["monitoring"])
			}
			if tags := v["tags"].(map[string]any); tags["loadramp:run-id"] != "run-1" || tags["loadramp:role"] != "target" {
				t.Errorf("%s: tags %v", addr, tags)
			}
		}
		if subnets["subnet-a"] != 2 || subnets["subnet-b"] != 1 {
			t.Errorf("instances over subnets: %v", subnets)
		}
		lbs := planned(plan, "aws_lb")
		if lb := lbs["aws_lb.target[0]"]; len(lbs) != 1 || lb["load_balancer_type"] != "network" || lb["internal"] != true {
			t.Errorf("load balancers %v", lbs)
		}
		if n := len(planned(plan, "aws_lb_target_group_attachment")); n != 3 {
			t.Errorf("%d target group attachments, want 3", n)
		}
		// The agent port admits operator_cidr alone.
		sg := planned(plan, "aws_security_group")["aws_security_group.target"]
		agent := false
		for _, r := range sg["ingress"].([]any) {
			in := r.(map[string]any)
			cidrs, _ := in["cidr_blocks"].([]any)
			if in["from_port"] == float64(7070) {
				agent = true
				if len(cidrs) != 1 || cidrs[0] != "10.0.1.25/32" {
					t.Errorf("agent port ingress %v", in)
				}
			}
			if in["from_port"] == float64(80) && len(cidrs) > 0 {
				t.Errorf("the load port admits %v behind a load balancer", cidrs)
			}
		}
		if !agent {
			t.Errorf("no ingress on the agent port: %v", sg["ingress"])
		}
		if got := plannedOutput(plan, "health_url"); got != "http://127.0.0.1:80/healthz" {
			t.Errorf("health_url %v", got)
		}
	})
	t.Run("generators with Locust", func(t *testing.T) {
		t.Parallel()
		fake, plan, out, err := planAgainstFake(t, bin, plugins, awsModule(t, "generators"), map[string]any{
			"vpc_id": "vpc-1", "subnet_ids": []string{"subnet-a"}, "operator_cidr": "10.0.1.25/32",
			"generator_security_group_id": "sg-1", "locustfile": "from locust import User\n", "loadramp_run_id": "run-1",
			"agent_url": "https://example.com/loadramp", "agent_sha256": sha, "workers": 3, "instance_type": "c6i.large"})
		if err != nil {
			t.Fatalf("plan: %v (instance types asked %q; unexpected calls %q)\n%s", err, fake.types, fake.unexpected, out[max(0, len(out)-600):])
		}
		fake.mu.Lock()
		if strings.Join(fake.types, ",") != "c6i.large" || len(fake.unexpected) > 0 {
			t.Errorf("DescribeInstanceTypes %v, unexpected calls %v", fake.types, fake.unexpected)
		}
		fake.mu.Unlock()
		instances := planned(plan, "aws_instance")
		if len(instances) != 4 || instances["aws_instance.master[0]"] == nil {
			t.Errorf("instances %v, want 3 workers and a master", slices.Sorted(maps.Keys(instances)))
		}
		if got := plannedOutput(plan, "locust_workers"); got != float64(6) {
			t.Errorf("locust_workers %v, want 3 hosts × 2 CPUs", got)
		}
	})
	// Generators for the builtin engine: agents only, no Locust master.
	t.Run("generators for the builtin engine", func(t *testing.T) {
		t.Parallel()
		fake, plan, out, err := planAgainstFake(t, bin, plugins, awsModule(t, "generators"), map[string]any{
			"vpc_id": "vpc-1", "subnet_ids": []string{"subnet-a"}, "operator_cidr": "10.0.1.25/32",
			"generator_security_group_id": "sg-1", "loadramp_run_id": "run-1",
			"agent_url": "https://example.com/loadramp", "agent_sha256": sha, "workers": 3})
		if err != nil {
			t.Fatalf("plan: %v\n%s", err, out)
		}
		fake.mu.Lock()
		if len(fake.types) != 0 || len(fake.parameters) != 1 || len(fake.unexpected) > 0 {
			t.Errorf("instance types %v, parameters %v, unexpected calls %v", fake.types, fake.parameters, fake.unexpected)
		}
		fake.mu.Unlock()
		instances := planned(plan, "aws_instance")
		if len(instances) != 3 || instances["aws_instance.master[0]"] != nil {
			t.Errorf("instances %v, want 3 workers and no master", slices.Sorted(maps.Keys(instances)))
		}
		for addr, v := range instances {
			sgs, _ := v["vpc_security_group_ids"].([]any)
			if v["vpc_security_group_ids"] != nil && !slices.Contains(sgs, any("sg-1")) {
				t.Errorf("%s: security groups %v lack the target's generator group", addr, sgs)
			}
		}
		if got := plannedOutput(plan, "locust_workers"); got != float64(0) {
			t.Errorf("locust_workers %v, want 0 without a locustfile", got)
		}
		if got := plannedOutput(plan, "master"); got != "" {
			t.Errorf("master %q, want none", got)
		}
	})
	t.Run("user_data over 16 KiB", func(t *testing.T) {
		t.Parallel()
		fake, _, out, err := planAgainstFake(t, bin, plugins, awsModule(t, "target"), map[string]any{
			"vpc_id": "vpc-1", "subnet_ids": []string{"subnet-a"}, "operator_cidr": "10.0.1.25/32", "ami": "ami-0123456789abcdef0",
			"app_user_data": strings.Repeat("echo 'your service, at length'\n", 600), "loadramp_run_id": "run-1",
			"agent_url": "https://example.com/loadramp", "agent_sha256": sha})
		if err == nil || !strings.Contains(out, "EC2 takes at most 16384") {
			t.Errorf("plan: %v, want the 16 KiB precondition:\n%s", err, out)
		}
		fake.mu.Lock()
		if len(fake.parameters) != 0 {
			t.Errorf("with ami set, the parameter was asked: %v", fake.parameters)
		}
		fake.mu.Unlock()
	})
}
