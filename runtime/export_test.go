package runtime

// WithDenseTable makes NewProgram load the artifact's own graph, over its
// whole table, for tests that compare it with the compact one.
func WithDenseTable(o ProgramOptions) ProgramOptions {
	o.denseTable = true
	return o
}
