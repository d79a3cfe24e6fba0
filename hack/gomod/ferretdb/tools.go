//go:build tools

// Package tools pins the FerretDB command so that `go mod tidy` records the
// FerretDB module and its dependencies in go.mod/go.sum. See go.mod for how
// the binary is built.
package tools

import (
	_ "github.com/FerretDB/FerretDB/cmd/ferretdb"
)
