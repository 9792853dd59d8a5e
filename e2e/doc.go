// Package e2e holds the tests that wire paw's packages together: specs
// compiled by the compiler and run by the runtime, pinned bit for bit.
// Every other package's tests exercise that package alone (programs for
// them are built by runtime/runtimetest, without the compiler).
package e2e
