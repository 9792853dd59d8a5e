// Command paw compiles fuzzy log filters into programs and runs them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/pawlogs/paw/cmd/paw/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
