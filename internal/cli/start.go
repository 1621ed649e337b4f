package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/loadramp/loadramp/orchestrator/plan"
	"github.com/loadramp/loadramp/orchestrator/record"
)

func (a *app) schemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the plan's JSON Schema (for editor completion and checks)",
		Long: `schema prints the JSON Schema of a ramp plan, generated from the tables 'loadramp plan'
decodes and validates with. The repository keeps it as docs/plan.schema.json, which the
example plans name in their first line for the YAML language server:

  # yaml-language-server: $schema=../docs/plan.schema.json`,
		Example: `  loadramp schema > docs/plan.schema.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := plan.JSONSchema()
			if err == nil {
				_, err = a.io.Out.Write(b)
			}
			return err
		},
	}
}

func (a *app) initCmd() *cobra.Command {
	var s plan.Starter
	var out string
	cmd := &cobra.Command{
		Use:   "init --url URL [--out plan.yaml]",
		Short: "Write a commented starter plan for a service at a URL",
		Long: `init writes a commented starter plan for a service running at URL (a static target, a
doubling request rate, gates, generator health, a probe). It never overwrites a file.`,
		Example: `  loadramp init --url http://10.0.0.5:8080/api/health --out api.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if s.URL == "" {
				return usageErr(errors.New("--url is required: the service's http:// or https:// URL"))
			}
			if err := plan.WriteStarter(out, s); err != nil {
				return usageErr(err)
			}
			fmt.Fprintf(a.io.Out, "wrote %s: check it with 'loadramp plan %s', then 'loadramp run %s'\n", out, out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&s.URL, "url", "", "the service's URL, http:// or https:// (required)")
	cmd.Flags().StringVar(&out, "out", "plan.yaml", "the plan file to write (never overwritten)")
	cmd.Flags().StringVar(&s.Name, "name", "", "the plan's name (default: from the URL's host and port)")
	return cmd
}

// Shell completion (cobra's 'loadramp completion bash|zsh|fish'): plan files,
// run directories, and the step addresses of note.
var (
	completePlans   = cobra.FixedCompletions([]string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt)
	completeRunDirs = cobra.FixedCompletions(nil, cobra.ShellCompDirectiveFilterDirs)
)

func completeNote(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	if len(args) == 1 {
		return record.StepAddrs(args[0]), cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}
