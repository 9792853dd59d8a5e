// Package composecheck holds the test that checks docker-compose.yml and
// the Dockerfile against the repository: no Docker engine runs where the
// tests run, so every path, port and file they reference is checked here.
package composecheck
