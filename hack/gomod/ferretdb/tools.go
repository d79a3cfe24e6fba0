//go:build tools

// Package tools pins the FerretDB command so `go mod tidy` keeps its
// dependencies; the binary is built with
// `go build github.com/FerretDB/FerretDB/cmd/ferretdb` from this directory.
package tools

import (
	_ "github.com/FerretDB/FerretDB/cmd/ferretdb"
)
