// Package cli is loadramp's command line: cobra commands and flags, viper
// configuration (config file, LOADRAMP_* environment variables, flags) turned
// into a wiring.Config, zerolog setup, signals, the progress display and exit
// codes. It is the only package that reads os.Args, the environment or viper;
// package wiring builds the real implementations from the Config it is given.
package cli

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/loadramp/loadramp/internal/wiring"
	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"golang.org/x/term"
)

// Exit codes (DESIGN.md "CLI").
const (
	ExitOK          = 0
	ExitRuntime     = 1
	ExitUsage       = 2
	ExitPolicy      = 3
	ExitInterrupted = 130
)

// Version is set at build time with -ldflags "-X github.com/loadramp/loadramp/internal/cli.Version=...".
var Version = "dev"

// exitError carries an exit code through cobra's error return.
type exitError struct {
	code int
	err  error
	// quiet: the message was already printed.
	quiet bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error           { return &exitError{code: ExitUsage, err: err} }
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// IO are the streams a command reads and writes.
type IO struct {
	In          io.Reader
	Out, ErrOut io.Writer
	// IsTerminal reports whether ErrOut is a terminal (live progress, colours).
	IsTerminal bool
}

// app is the state shared by the commands of one invocation.
type app struct {
	io  IO
	v   *viper.Viper
	log zerolog.Logger
	// logOut and logLevel are where and from which level logs go.
	logOut   io.Writer
	logLevel zerolog.Level
	getenv   func(string) string
	// wiring is the configuration of the implementations a run is wired with.
	wiring wiring.Config
	// logLevelSet: the user chose the log level.
	logLevelSet bool
}

// Config keys (file keys; environment variables are LOADRAMP_ + upper case with _).
const (
	keyRunsDir      = "runs_dir"
	keyTerraformBin = "terraform_bin"
	keyLogLevel     = "log_level"
	keyLogFormat    = "log_format"
	keyAWSProfile   = "aws_profile"
	keyAWSRegion    = "aws_region"
	keyMaxRate      = plan.CeilingMaxRate
	keyMaxUsers     = plan.CeilingMaxUsers
	keyS3Endpoint   = "s3_endpoint"
	// keyAWSReadyTimeout bounds the wait for the target's instances to run
	// and pass their status checks after terraform apply.
	keyAWSReadyTimeout = "aws_ready_timeout"
	// keyCloudWatchSettle bounds how long a step waits, after its hold, for
	// CloudWatch to publish the hold's last minute (0: do not wait).
	keyCloudWatchSettle       = "cloudwatch_settle"
	keyAgentToken, keyAgentCA = "agent_token", "agent_ca" // the agents' token (as LOADRAMP_AGENT_TOKEN for agents), https:// agents' CA
)

// Main runs loadramp with args (without the program name) and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	isTTY := false
	if f, ok := stderr.(*os.File); ok {
		isTTY = term.IsTerminal(int(f.Fd()))
	}
	return run(args, IO{In: stdin, Out: stdout, ErrOut: stderr, IsTerminal: isTTY}, os.Getenv)
}

// inherited marks loadramp's inherited descriptors close-on-exec, once per process.
var inherited sync.Once

func run(args []string, streams IO, getenv func(string) string) int {
	inherited.Do(markInheritedCloseOnExec)
	a := &app{io: streams, v: viper.New(), getenv: getenv}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !ee.quiet {
			fmt.Fprintf(streams.ErrOut, "Error: %v\n", ee.err)
		}
		return ee.code
	}
	// cobra's own errors: unknown command or flag, wrong argument count.
	fmt.Fprintf(streams.ErrOut, "Error: %v\nRun 'loadramp --help' for usage.\n", err)
	return ExitUsage
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "loadramp",
		Short: "Find where a system breaks under load, and why",
		Long: `loadramp runs a ramp plan: it provisions a target fleet and a load-generator fleet,
applies load in steps that double one parameter at a time, judges each step's steady
state against latency gates, tells a saturated load generator apart from a saturated
target, stops at the first real bottleneck, and writes a report naming its cause.

Start with the bundled plan, which needs nothing but this machine:

  loadramp plan plans/local-eventbus.yaml     # validate it and show the step schedule
  loadramp run plans/local-eventbus.yaml      # run it; prints where the report is

Configuration comes from a config file (--config, default
$XDG_CONFIG_HOME/loadramp/config.yaml), then LOADRAMP_* environment variables, then
flags; each overrides the one before. Keys: runs_dir, terraform_bin, log_level,
log_format, aws_profile, aws_region, aws_ready_timeout, cloudwatch_settle,
s3_endpoint, max_rate, max_users, memory_limit, agent_token, agent_ca (for example
LOADRAMP_MAX_RATE=20000 refuses plans that would offer more than 20,000 req/s).

Exit codes: 0 the run finished (a bottleneck found is a success), 1 runtime error,
2 bad usage or invalid plan, 3 policy failure (regression), 130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.String("config", "", "config file (default $XDG_CONFIG_HOME/loadramp/config.yaml)")
	pf.String("log-level", "info", "log level: debug, info, warn, error")
	pf.String("log-format", "", "log format: console (default on a terminal) or json (default otherwise)")
	pf.String("runs-dir", "runs", "directory holding run directories")
	pf.String("terraform-bin", "", "terraform binary (default: ./bin/terraform, then PATH)")
	pf.String("aws-profile", "", "AWS shared-config profile for AWS fleets")
	pf.String("aws-region", "", "AWS region for AWS fleets")
	pf.Float64("max-rate", 0, "safety ceiling: refuse plans whose schedule offers more req/s than this (> 0; unset: none)")
	pf.String("s3-endpoint", "", "S3 endpoint for --upload (S3-compatible stores); default AWS")
	pf.Float64("max-users", 0, "safety ceiling: refuse plans whose schedule runs more users than this (> 0; unset: none)")
	for key, flag := range map[string]string{
		keyLogLevel: "log-level", keyLogFormat: "log-format", keyRunsDir: "runs-dir",
		keyTerraformBin: "terraform-bin", keyAWSProfile: "aws-profile", keyAWSRegion: "aws-region",
		keyMaxRate: "max-rate", keyMaxUsers: "max-users", keyS3Endpoint: "s3-endpoint",
	} {
		_ = a.v.BindPFlag(key, pf.Lookup(flag))
	}
	root.AddCommand(a.versionCmd(), a.planCmd(), a.runCmd(), a.reportCmd(), a.runsCmd(), a.compareCmd(), a.resumeCmd(), a.limitsCmd(), a.destroyCmd(), a.agentCmd(), a.noteCmd(), a.schemaCmd(), a.initCmd())
	return root
}

// setup reads the configuration and builds the logger.
func (a *app) setup(cmd *cobra.Command) error {
	v := a.v
	v.SetEnvPrefix("LOADRAMP")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	v.SetDefault(keyRunsDir, "runs")
	v.SetDefault(keyLogLevel, "info")

	cfg, _ := cmd.Flags().GetString("config")
	explicit := cfg != ""
	if !explicit {
		cfg = a.getenv("LOADRAMP_CONFIG")
		explicit = cfg != ""
	}
	if !explicit {
		base := a.getenv("XDG_CONFIG_HOME")
		if base == "" {
			if home := a.getenv("HOME"); home != "" {
				base = filepath.Join(home, ".config")
			}
		}
		if base != "" {
			cfg = filepath.Join(base, "loadramp", "config.yaml")
		}
	}
	if cfg != "" {
		v.SetConfigFile(cfg)
		if err := v.ReadInConfig(); err != nil {
			var notFound viper.ConfigFileNotFoundError
			if explicit || !(errors.As(err, &notFound) || errors.Is(err, os.ErrNotExist)) {
				return usageErr(fmt.Errorf("config file %s: %w", cfg, err))
			}
		}
	}

	level, err := zerolog.ParseLevel(strings.ToLower(v.GetString(keyLogLevel)))
	if err != nil || level == zerolog.NoLevel {
		return usageErr(fmt.Errorf("log_level %q: allowed values are debug, info, warn, error", v.GetString(keyLogLevel)))
	}
	format := v.GetString(keyLogFormat)
	switch format {
	case "":
		format = "json"
		if a.io.IsTerminal {
			format = "console"
		}
	case "console", "json":
	default:
		return usageErr(fmt.Errorf("log_format %q: allowed values are console, json", format))
	}
	a.logLevel = level
	a.logLevelSet = cmd.Flags().Changed("log-level") || a.getenv("LOADRAMP_LOG_LEVEL") != "" || v.InConfig(keyLogLevel)
	a.logOut = a.io.ErrOut
	if format == "console" {
		a.logOut = zerolog.ConsoleWriter{Out: a.io.ErrOut, TimeFormat: "15:04:05", NoColor: !a.io.IsTerminal}
	}
	a.log = zerolog.New(a.logOut).Level(level).With().Timestamp().Logger()
	for _, k := range plan.CeilingKeys() {
		if v.IsSet(k) {
			f, err := toFloat(v.Get(k))
			if err != nil {
				return usageErr(fmt.Errorf("%s: %v", k, err))
			}
			// 0 once meant "no ceiling": a ceiling is set, or left out.
			if !(f > 0) || math.IsInf(f, 0) {
				return usageErr(fmt.Errorf("%s: %v is not a ceiling: give a number > 0, or leave it unset for none", k, v.Get(k)))
			}
		}
	}
	a.wiring, err = a.wiringConfig()
	if err != nil {
		return usageErr(err)
	}
	return nil
}

// wiringConfig is the configuration of the implementations a run is wired
// with, from the config file, LOADRAMP_* and flags.
func (a *app) wiringConfig() (c wiring.Config, err error) {
	v := a.v
	c = wiring.DefaultConfig()
	c.TerraformBin = v.GetString(keyTerraformBin)
	c.AWSProfile, c.AWSRegion = v.GetString(keyAWSProfile), v.GetString(keyAWSRegion)
	c.AWSEndpoint = a.getenv("LOADRAMP_AWS_ENDPOINT")
	c.S3Endpoint, c.Log = v.GetString(keyS3Endpoint), a.log
	c.MemoryLimit, err = wiring.ParseMemoryLimit(v.GetString("memory_limit"))
	c.Version, c.AgentCA, c.AgentToken = Version, v.GetString(keyAgentCA), strings.TrimSpace(v.GetString(keyAgentToken))
	for key, d := range map[string]*time.Duration{keyAWSReadyTimeout: &c.AWSReadyTimeout, keyCloudWatchSettle: &c.CloudWatchSettle} {
		if !v.IsSet(key) {
			continue
		}
		x, err := time.ParseDuration(strings.TrimSpace(v.GetString(key)))
		if err != nil || x < 0 || (key == keyAWSReadyTimeout && x == 0) {
			return c, fmt.Errorf("%s %q: want a positive duration such as 10m", key, v.GetString(key))
		}
		*d = x
	}
	return c, err // memory_limit's
}

// explicitLogLevel reports whether the log level was chosen by the user (flag,
// environment or config file) rather than defaulted.
func (a *app) explicitLogLevel() bool {
	return a.logLevelSet
}

func toFloat(x any) (float64, error) {
	switch t := x.(type) {
	case float64:
		return t, nil
	case int:
		return float64(t), nil
	case int64:
		return float64(t), nil
	case string:
		var f float64
		if _, err := fmt.Sscanf(strings.TrimSpace(t), "%g", &f); err != nil {
			return 0, fmt.Errorf("%q is not a number", t)
		}
		return f, nil
	}
	return 0, fmt.Errorf("%v is not a number", x)
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print loadramp's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.io.Out, "loadramp %s\n", Version)
			return nil
		},
	}
}
