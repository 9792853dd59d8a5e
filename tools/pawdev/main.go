// Command pawdev runs the measurements that build and check paw, apart
// from the product: the few-shot quality experiment over ../shared and the
// Kafka processor benchmark on an embedded broker.
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
	code := cli.DevMain(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
