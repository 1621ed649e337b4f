// Command loadramp is the load-ramp orchestrator. See `loadramp --help`.
package main

import (
	"os"

	"github.com/loadramp/loadramp/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
