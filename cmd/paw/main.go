// Command paw compiles fuzzy log filters into programs and runs them.
package main

import "github.com/pawlogs/paw/cmd/paw/cli"

func main() { cli.Exit(cli.Main) }
