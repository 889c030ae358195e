// Package tools is the wrapper module scripts/build_daprd.sh builds daprd from (see README.md).
// It has no code of its own: go build, vet and test of this module compile nothing of dapr's.
package tools
