package runtime

// WithDenseTable makes NewProgram load the artifact's own graph, over its
// whole table, for tests that compare it with the compact one.
func WithDenseTable(o ProgramOptions) ProgramOptions {
	o.denseTable = true
	return o
}

// Fused reports whether some of a batcher's programs run as one graph.
func (b *Batcher) Fused() bool {
	for _, f := range b.fused {
		if f != nil {
			return true
		}
	}
	return false
}

// ResolveORTLib finds the ONNX Runtime library as OpenEnv("") does.
var ResolveORTLib = resolveORTLib

// Featurizations is the number of distinct featurizations per record.
func (s *ProgramSet) Featurizations() int { return len(s.groups) }
