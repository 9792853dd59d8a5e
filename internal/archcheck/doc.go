// Package archcheck holds the test that ARCHITECTURE.md's import graph is
// the module's, and that the layering rules hold.
package archcheck
