// Command pawdev runs the measurements that build and check paw, apart
// from the product: the few-shot quality experiment over ../shared and the
// Kafka processor benchmark on an embedded broker.
package main

import "github.com/pawlogs/paw/cmd/paw/cli"

func main() { cli.Exit(cli.DevMain) }
