//go:build tools

// Package tools records the dependency on daprd's main package, so the go.mod requirement has a
// reason to exist. The build tag keeps it out of every ordinary build, vet or test of this module:
// daprd is built by scripts/build_daprd.sh, never by compiling this file.
package tools

import _ "github.com/dapr/dapr/cmd/daprd"
