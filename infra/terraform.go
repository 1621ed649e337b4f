package infra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/rs/zerolog"
)

// Ref keys of a Terraform fleet (Fleet.Ref), recorded in run.json so that
// `loadramp destroy RUN_DIR` can find the fleet again after a kill -9.
const (
	RefModule    = "module"    // absolute module directory
	RefWorkspace = "workspace" // the run's workspace
	RefState     = "state"     // where the workspace's state lives
	RefDataDir   = "data_dir"  // TF_DATA_DIR of the run (and the var file)
)

// TerraformVarFile is the name, inside TerraformConfig.DataDir, of the JSON
// variable file every terraform command of the fleet reads: the plan's
// variables as last applied (Scale rewrites it), so a later destroy uses the
// same values.
const TerraformVarFile = "loadramp.tfvars.json"

// TerraformRefFile is the name, inside TerraformConfig.DataDir, of the
// fleet's references (Ref as JSON), written before the first apply.
const TerraformRefFile = "loadramp-ref.json"

// DefaultTerraformWaitDelay is how long a cancelled terraform command has,
// after SIGINT, to stop on its own before it is killed.
const DefaultTerraformWaitDelay = 60 * time.Second

// Builtin variables the provider sets when the module declares them (and the
// plan does not): the run id, loadramp's working directory (relative paths
// in variables are relative to it, not to the module) and the run directory.
const (
	VarRunID   = "loadramp_run_id"
	VarWorkdir = "loadramp_workdir"
	VarRunDir  = "loadramp_run_dir"
	// VarAgentToken is the token of the agents the module starts: a
	// secret, given to terraform in its environment only (Secrets).
	VarAgentToken = "loadramp_agent_token"
)

// TerraformConfig configures a fleet provisioned by a Terraform module.
type TerraformConfig struct {
	// Fleet is the fleet name, e.g. "target".
	Fleet string
	// Dir is the module directory Terraform runs in (the root module). Its
	// backend, if it declares one, holds the workspace; otherwise the state
	// is under Dir/terraform.tfstate.d/<workspace>.
	Dir string
	// Workspace is the run's own workspace, e.g. "loadramp-<run-id>"; runs
	// never share one. It is created by Up and deleted by Down.
	Workspace string
	// DataDir is this fleet's private directory for the run: TF_DATA_DIR
	// (providers, backend configuration, selected workspace) and the var file.
	// Keeping it per run lets runs share a module directory at once.
	DataDir string
	// Vars are the module's input variables, already templated. Values are
	// written as JSON, so numbers, lists and maps keep their types.
	Vars map[string]any
	// Builtins are values for the VarRunID, VarWorkdir and VarRunDir
	// variables, set when the module declares them and Vars does not.
	Builtins map[string]string
	// Secrets are values of secret builtin variables (VarAgentToken), set
	// when the module declares them: given to terraform apply in a var file
	// of their own, private (0600 in a 0700 directory outside the run
	// directory) and removed as soon as the command ends, never written to
	// the var file, the run directory or the log.
	Secrets map[string]string
	// ScaleVar names the variable Scale multiplies by its factor ("" = the
	// fleet cannot scale). Its value is the fleet's Size.
	ScaleVar string
	// Reuse selects Workspace when it already exists instead of failing: a
	// campaign's variants share one workspace and update the fleet in place.
	Reuse bool
	// Bin is the terraform executable ("" = LookTerraform("")).
	Bin string
	// Env is added to terraform's environment (inherited otherwise).
	// TF_CLI_CONFIG_FILE defaults to an empty file in DataDir, and
	// CHECKPOINT_DISABLE to 1.
	Env map[string]string
	// WaitDelay bounds how long a cancelled command may take after SIGINT
	// (0 = DefaultTerraformWaitDelay).
	WaitDelay time.Duration
	// Log receives the provider's events and terraform's output, a line an
	// event.
	Log zerolog.Logger
}

// Terraform is a Provider that applies a Terraform module in a workspace of
// its own: Up runs init, workspace new and apply, and reads the outputs;
// Scale re-applies with ScaleVar grown; Down runs destroy and deletes the
// workspace. Down is idempotent and works from a fresh process given the same
// config, which is how `loadramp destroy` cleans up after a kill -9.
type Terraform struct {
	cfg TerraformConfig
	log zerolog.Logger

	mu     sync.Mutex // serializes the operations
	tf     *tfexec.Terraform
	stdout *lineLog // terraform's stdout, line by line into the log
	// secrets are the values of the sensitive outputs seen so far, kept out
	// of the log.
	secrets secrets
	vars    map[string]any
	inited  bool
	// upTried: Up ran in this process; created: it created the workspace.
	upTried, created bool
	fleet            *Fleet
}

var _ Provider = (*Terraform)(nil)

// TerraformError is a terraform command that failed: which one, in which
// module and workspace, with terraform's own message.
type TerraformError struct {
	Command   string // "init", "apply", ...
	Module    string
	Workspace string
	Err       error
}

func (e *TerraformError) Error() string {
	msg := strings.TrimSpace(e.Err.Error())
	return fmt.Sprintf("terraform %s (module %s, workspace %s): %s", e.Command, e.Module, e.Workspace, msg)
}

func (e *TerraformError) Unwrap() error { return e.Err }

// LookTerraform finds the terraform binary: configured if set (a path, or a
// name looked up in PATH), else ./bin/terraform, else terraform in PATH.
func LookTerraform(configured string) (string, error) {
	if configured != "" {
		p, err := exec.LookPath(configured)
		if err != nil {
			return "", fmt.Errorf("terraform_bin %q: %w", configured, err)
		}
		return filepath.Abs(p)
	}
	if st, err := os.Stat(filepath.Join("bin", "terraform")); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return filepath.Abs(filepath.Join("bin", "terraform"))
	}
	p, err := exec.LookPath("terraform")
	if err != nil {
		return "", fmt.Errorf("no terraform binary: set terraform_bin, build ./bin/terraform (make bin/terraform) or put terraform in PATH: %w", err)
	}
	return filepath.Abs(p)
}

// NewTerraform checks cfg and returns the provider; nothing runs until Up
// (or Down).
func NewTerraform(cfg TerraformConfig) (*Terraform, error) {
	var errs []error
	if cfg.Dir == "" {
		errs = append(errs, errors.New("module directory missing"))
	}
	if cfg.Workspace == "" {
		errs = append(errs, errors.New("workspace missing"))
	}
	if cfg.DataDir == "" {
		errs = append(errs, errors.New("data directory missing"))
	}
	if cfg.ScaleVar != "" {
		if _, ok := cfg.Vars[cfg.ScaleVar]; !ok {
			errs = append(errs, fmt.Errorf("scale_var %q is not among the vars (%s): give it a starting value", cfg.ScaleVar, strings.Join(slices.Sorted(maps.Keys(cfg.Vars)), ", ")))
		} else if _, err := toNumber(cfg.Vars[cfg.ScaleVar]); err != nil {
			errs = append(errs, fmt.Errorf("scale_var %q: %w", cfg.ScaleVar, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("infra: terraform fleet %q: %w", cfg.Fleet, err)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("infra: terraform fleet %q: module directory: %w", cfg.Fleet, err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("infra: terraform fleet %q: module directory %s is not a directory", cfg.Fleet, dir)
	}
	cfg.Dir = dir
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("infra: terraform fleet %q: data directory: %w", cfg.Fleet, err)
	}
	if cfg.WaitDelay <= 0 {
		cfg.WaitDelay = DefaultTerraformWaitDelay
	}
	cfg.Vars = maps.Clone(cfg.Vars)
	cfg.Env = maps.Clone(cfg.Env)
	cfg.Builtins = maps.Clone(cfg.Builtins)
	cfg.Secrets = maps.Clone(cfg.Secrets)
	return &Terraform{cfg: cfg, log: cfg.Log.With().Str("fleet", cfg.Fleet).Str("workspace", cfg.Workspace).Logger()}, nil
}

// Ref returns the fleet's references for run.json.
func (t *Terraform) Ref() map[string]string {
	return map[string]string{
		RefModule:    t.cfg.Dir,
		RefWorkspace: t.cfg.Workspace,
		RefState:     t.stateLocation(),
		RefDataDir:   t.cfg.DataDir,
	}
}

// Up initializes the module, creates the run's workspace, applies the
// variables and returns the outputs. On failure what was applied stays in
// the workspace for Down, which the caller runs (as for every provider).
func (t *Terraform) Up(ctx context.Context) (*Fleet, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fleet != nil {
		return nil, fmt.Errorf("infra: terraform fleet %q is already up", t.cfg.Fleet)
	}
	t.upTried = true
	if err := t.init(ctx); err != nil {
		return nil, err
	}
	vars, err := t.withBuiltins(t.cfg.Vars)
	if err != nil {
		return nil, err
	}
	if t.cfg.Reuse {
		var list []string
		if err := t.run("workspace list", func() (err error) { list, _, err = t.tf.WorkspaceList(ctx); return err }); err != nil {
			return nil, err
		}
		if slices.Contains(list, t.cfg.Workspace) {
			// A campaign's earlier variant left the fleet up: apply updates it
			// in place with this variant's variables.
			if err := t.run("workspace select", func() error { return t.tf.WorkspaceSelect(ctx, t.cfg.Workspace) }); err != nil {
				return nil, err
			}
			t.created = true
			t.log.Info().Str("module", t.cfg.Dir).Str("state", t.stateLocation()).Msg("terraform workspace reused: updating the fleet in place")
			return t.apply(ctx, vars)
		}
	}
	if err := t.run("workspace new", func() error { return t.tf.WorkspaceNew(ctx, t.cfg.Workspace) }); err != nil {
		return nil, err
	}
	t.created = true
	t.log.Info().Str("module", t.cfg.Dir).Str("state", t.stateLocation()).Msg("terraform workspace created")
	return t.apply(ctx, vars)
}

// Scale re-applies the module with ScaleVar multiplied by factor (rounded
// up, and at least one more) and returns the grown fleet.
func (t *Terraform) Scale(ctx context.Context, factor float64) (*Fleet, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cfg.ScaleVar == "" {
		return nil, ErrCannotScale
	}
	if t.fleet == nil {
		return nil, fmt.Errorf("infra: terraform fleet %q is not up", t.cfg.Fleet)
	}
	if !(factor > 1) {
		return nil, fmt.Errorf("infra: terraform fleet %q: scale factor %g must be > 1", t.cfg.Fleet, factor)
	}
	cur, _ := toNumber(t.vars[t.cfg.ScaleVar])
	next := ScaledSize(cur, factor)
	vars := maps.Clone(t.vars)
	vars[t.cfg.ScaleVar] = next
	t.log.Info().Str("var", t.cfg.ScaleVar).Float64("from", cur).Int("to", next).Msg("scaling terraform fleet")
	return t.apply(ctx, vars)
}

// ScaledSize is the size a fleet of size cur grows to by factor: rounded up,
// and always at least one more.
func ScaledSize(cur, factor float64) int {
	next := int(math.Ceil(cur*factor - 1e-9))
	if next <= int(cur) {
		next = int(cur) + 1
	}
	return next
}

// Down destroys what the workspace holds and deletes the workspace. It does
// nothing when Up never created the workspace, and nothing when the
// workspace no longer exists, so it is safe to repeat. On a destroy failure
// the workspace is kept, for a later `loadramp destroy`.
func (t *Terraform) Down(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.upTried && !t.created {
		return nil
	}
	if err := t.init(ctx); err != nil {
		return err
	}
	var list []string
	if err := t.run("workspace list", func() (err error) { list, _, err = t.tf.WorkspaceList(ctx); return err }); err != nil {
		return err
	}
	if !slices.Contains(list, t.cfg.Workspace) {
		t.log.Info().Msg("terraform workspace already gone: nothing to destroy")
		t.fleet = nil
		return nil
	}
	if err := t.run("workspace select", func() error { return t.tf.WorkspaceSelect(ctx, t.cfg.Workspace) }); err != nil {
		return err
	}
	// An empty workspace (an apply that failed before creating anything,
	// e.g. on a bad variable) needs no destroy, which would fail the same way.
	var state *tfjson.State
	if err := t.run("show", t.quiet(func() (err error) { state, err = t.tf.Show(ctx); return err })); err != nil {
		return err
	}
	if stateEmpty(state) {
		t.log.Info().Msg("terraform workspace holds nothing: no destroy needed")
		return t.deleteWorkspace(ctx)
	}
	// A fresh process (`loadramp destroy`) learns the secrets from the
	// state before the destroy plan may print them.
	if state.Values != nil {
		for _, o := range state.Values.Outputs {
			if o != nil && o.Sensitive {
				t.secrets.add(secretStrings(o.Value)...)
			}
		}
	}
	varFile := filepath.Join(t.cfg.DataDir, TerraformVarFile)
	if _, err := os.Stat(varFile); err != nil {
		// A fresh process whose var file was lost: write the configured values.
		vars, err := t.withBuiltins(t.cfg.Vars)
		if err != nil {
			return err
		}
		if err := t.writeVars(vars); err != nil {
			return err
		}
	}
	t.log.Info().Msg("terraform destroy")
	if err := t.run("destroy", func() error { return t.tf.Destroy(ctx, tfexec.VarFile(varFile)) }); err != nil {
		return err
	}
	return t.deleteWorkspace(ctx)
}

// deleteWorkspace leaves the run's workspace for "default" and deletes it.
func (t *Terraform) deleteWorkspace(ctx context.Context) error {
	if err := t.run("workspace select", func() error { return t.tf.WorkspaceSelect(ctx, "default") }); err != nil {
		return err
	}
	if err := t.run("workspace delete", func() error { return t.tf.WorkspaceDelete(ctx, t.cfg.Workspace) }); err != nil {
		return err
	}
	// The local backend leaves an empty terraform.tfstate.d behind in the
	// user's module: remove it when nothing else is in it.
	_ = os.Remove(filepath.Join(t.cfg.Dir, "terraform.tfstate.d"))
	t.fleet = nil
	t.log.Info().Msg("terraform workspace deleted")
	return nil
}

// stateEmpty reports whether a workspace's state holds no resource.
func stateEmpty(st *tfjson.State) bool {
	if st == nil || st.Values == nil || st.Values.RootModule == nil {
		return true
	}
	var count func(m *tfjson.StateModule) int
	count = func(m *tfjson.StateModule) int {
		n := len(m.Resources)
		for _, c := range m.ChildModules {
			n += count(c)
		}
		return n
	}
	return count(st.Values.RootModule) == 0
}

// init prepares the data directory and runs terraform init once.
func (t *Terraform) init(ctx context.Context) error {
	if t.inited {
		return nil
	}
	if err := os.MkdirAll(t.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("infra: terraform fleet %q: data directory: %w", t.cfg.Fleet, err)
	}
	// The references go next to the data before anything is applied, so a
	// run killed during its first apply can still be found and destroyed.
	if err := writeJSONFile(filepath.Join(t.cfg.DataDir, TerraformRefFile), t.Ref()); err != nil {
		return fmt.Errorf("infra: terraform fleet %q: %w", t.cfg.Fleet, err)
	}
	if t.tf == nil {
		bin := t.cfg.Bin
		if bin == "" {
			var err error
			if bin, err = LookTerraform(""); err != nil {
				return fmt.Errorf("infra: terraform fleet %q: %w", t.cfg.Fleet, err)
			}
		}
		tf, err := tfexec.NewTerraform(t.cfg.Dir, bin)
		if err != nil {
			return fmt.Errorf("infra: terraform fleet %q: %w", t.cfg.Fleet, err)
		}
		env, err := t.env()
		if err != nil {
			return err
		}
		if err := tf.SetEnv(env); err != nil {
			return fmt.Errorf("infra: terraform fleet %q: environment: %w", t.cfg.Fleet, err)
		}
		if err := tf.SetWaitDelay(t.cfg.WaitDelay); err != nil {
			return fmt.Errorf("infra: terraform fleet %q: %w", t.cfg.Fleet, err)
		}
		t.stdout = newLineLog(t.log, "stdout", &t.secrets)
		tf.SetStdout(t.stdout)
		tf.SetStderr(newLineLog(t.log, "stderr", &t.secrets))
		t.tf = tf
	}
	t.log.Info().Str("module", t.cfg.Dir).Str("data_dir", t.cfg.DataDir).Msg("terraform init")
	if err := t.run("init", func() error { return t.tf.Init(ctx) }); err != nil {
		return err
	}
	t.inited = true
	return nil
}

// env is terraform's environment: loadramp's, TF_DATA_DIR for the run, an
// empty CLI config unless one is set, no update checks, then cfg.Env.
func (t *Terraform) env() (map[string]string, error) {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	tfexec.CleanEnv(env)
	env["TF_DATA_DIR"] = t.cfg.DataDir
	env["CHECKPOINT_DISABLE"] = "1"
	// A CLI config that is not set, or set to a file that does not exist
	// (terraform warns on every command), is replaced by an empty one.
	if cfgFile := env["TF_CLI_CONFIG_FILE"]; cfgFile == "" || !fileExists(cfgFile) {
		path := filepath.Join(t.cfg.DataDir, "empty.tfrc")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			return nil, fmt.Errorf("infra: terraform fleet %q: CLI config: %w", t.cfg.Fleet, err)
		}
		env["TF_CLI_CONFIG_FILE"] = path
	}
	maps.Copy(env, t.cfg.Env)
	return env, nil
}

// secretVars writes the Secrets the module declares to a private var file
// for one command, and returns its option and the function that removes it
// (no option when there is none to give).
func (t *Terraform) secretVars() ([]tfexec.ApplyOption, func(), error) {
	vals := map[string]string{}
	if len(t.cfg.Secrets) > 0 {
		declared, err := t.declared()
		if err != nil {
			return nil, nil, err
		}
		for name, v := range t.cfg.Secrets {
			if declared[name] && v != "" {
				vals[name] = v
				t.secrets.add(v)
			}
		}
	}
	if len(vals) == 0 {
		return nil, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "loadramp-secret-")
	if err != nil {
		return nil, nil, fmt.Errorf("infra: terraform fleet %q: secret variables: %w", t.cfg.Fleet, err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	path := filepath.Join(dir, "secret.tfvars.json")
	if err := writeJSONFile(path, vals); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("infra: terraform fleet %q: secret variables: %w", t.cfg.Fleet, err)
	}
	return []tfexec.ApplyOption{tfexec.VarFile(path)}, cleanup, nil
}

// apply writes vars to the var file, applies and reads the outputs.
func (t *Terraform) apply(ctx context.Context, vars map[string]any) (*Fleet, error) {
	if err := t.writeVars(vars); err != nil {
		return nil, err
	}
	t.log.Info().Msg("terraform apply")
	opts, cleanup, err := t.secretVars()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	opts = append([]tfexec.ApplyOption{tfexec.VarFile(filepath.Join(t.cfg.DataDir, TerraformVarFile))}, opts...)
	if err := t.run("apply", func() error { return t.tf.Apply(ctx, opts...) }); err != nil {
		return nil, err
	}
	t.vars = vars
	var outs map[string]tfexec.OutputMeta
	if err := t.run("output", t.quiet(func() (err error) { outs, err = t.tf.Output(ctx); return err })); err != nil {
		return nil, err
	}
	outputs, err := OutputStrings(outs)
	if err != nil {
		return nil, fmt.Errorf("infra: terraform fleet %q: %w", t.cfg.Fleet, err)
	}
	var sensitive []string
	for name, o := range outs {
		if o.Sensitive {
			sensitive = append(sensitive, name)
			var v any
			if json.Unmarshal(o.Value, &v) == nil {
				t.secrets.add(secretStrings(v)...)
			}
		}
	}
	slices.Sort(sensitive)
	size := 1
	if t.cfg.ScaleVar != "" {
		n, _ := toNumber(vars[t.cfg.ScaleVar])
		size = int(n)
	}
	t.fleet = &Fleet{Name: t.cfg.Fleet, Outputs: outputs, Sensitive: sensitive, Size: size, Ref: t.Ref()}
	return cloneFleet(t.fleet), nil
}

// quiet runs f, a command whose stdout is JSON (show, output), without
// copying that stdout into the log: it holds the state and every output,
// sensitive ones in clear. Its stderr is still logged.
func (t *Terraform) quiet(f func() error) func() error {
	return func() error {
		t.tf.SetStdout(io.Discard)
		defer t.tf.SetStdout(t.stdout)
		return f()
	}
}

func (t *Terraform) run(command string, f func() error) error {
	if err := f(); err != nil {
		return &TerraformError{Command: command, Module: t.cfg.Dir, Workspace: t.cfg.Workspace, Err: err}
	}
	return nil
}

func (t *Terraform) writeVars(vars map[string]any) error {
	if err := writeJSONFile(filepath.Join(t.cfg.DataDir, TerraformVarFile), vars); err != nil {
		return fmt.Errorf("infra: terraform fleet %q: variables: %w", t.cfg.Fleet, err)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeJSONFile replaces path with v as JSON, atomically.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// ReadTerraformRef reads the references a Terraform fleet wrote into its data
// directory (TerraformRefFile).
func ReadTerraformRef(dataDir string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, TerraformRefFile))
	if err != nil {
		return nil, err
	}
	var ref map[string]string
	if err := json.Unmarshal(b, &ref); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dataDir, TerraformRefFile), err)
	}
	return ref, nil
}

// variableRe finds the builtin variables a module declares.
var variableRe = regexp.MustCompile(`(?m)^\s*variable\s+"(loadramp_[a-z_]+)"`)

// withBuiltins adds the builtin variables the module declares to vars.
func (t *Terraform) withBuiltins(vars map[string]any) (map[string]any, error) {
	out := maps.Clone(vars)
	if out == nil {
		out = map[string]any{}
	}
	if len(t.cfg.Builtins) == 0 {
		return out, nil
	}
	declared, err := t.declared()
	if err != nil {
		return nil, err
	}
	for name := range declared {
		if v, ok := t.cfg.Builtins[name]; ok {
			if _, set := out[name]; !set {
				out[name] = v
			}
		}
	}
	return out, nil
}

// declared lists the builtin (loadramp_*) variables the module declares.
func (t *Terraform) declared() (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(t.cfg.Dir, "*.tf"))
	if err != nil {
		return nil, fmt.Errorf("infra: terraform fleet %q: %w", t.cfg.Fleet, err)
	}
	out := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("infra: terraform fleet %q: reading module: %w", t.cfg.Fleet, err)
		}
		for _, m := range variableRe.FindAllSubmatch(b, -1) {
			out[string(m[1])] = true
		}
	}
	return out, nil
}

// stateLocation says where the workspace's state lives: a file for the local
// backend, else the backend's type and settings from TF_DATA_DIR.
func (t *Terraform) stateLocation() string {
	local := filepath.Join(t.cfg.Dir, "terraform.tfstate.d", t.cfg.Workspace, "terraform.tfstate")
	b, err := os.ReadFile(filepath.Join(t.cfg.DataDir, "terraform.tfstate"))
	if err != nil {
		return local
	}
	var st struct {
		Backend *struct {
			Type   string          `json:"type"`
			Config json.RawMessage `json:"config"`
		} `json:"backend"`
	}
	if json.Unmarshal(b, &st) != nil || st.Backend == nil || st.Backend.Type == "" || st.Backend.Type == "local" {
		return local
	}
	return fmt.Sprintf("backend %s %s, workspace %s", st.Backend.Type, st.Backend.Config, t.cfg.Workspace)
}

// OutputStrings maps terraform outputs to fleet outputs: strings as they are,
// lists of strings joined with commas, anything else as compact JSON.
func OutputStrings(outs map[string]tfexec.OutputMeta) (map[string]string, error) {
	res := make(map[string]string, len(outs))
	for name, o := range outs {
		s, err := outputString(o.Value)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
		res[name] = s
	}
	return res, nil
}

func outputString(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return strings.Join(list, ","), nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// toNumber reads a variable's value as a number: a YAML number or a
// templated string holding one.
func toNumber(v any) (float64, error) {
	switch x := v.(type) {
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case float64:
		return x, nil
	case json.Number:
		return x.Float64()
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, fmt.Errorf("value %q is not a number", x)
		}
		return f, nil
	}
	return 0, fmt.Errorf("value %v (%T) is not a number", v, v)
}
