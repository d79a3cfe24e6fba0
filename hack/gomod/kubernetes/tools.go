//go:build tools

// Package tools pins the Kubernetes commands this stack builds, so that
// `go mod tidy` keeps every module they need in go.mod/go.sum.
// kubelet is built now (sharing the cold compile) for the node issue later;
// kubectl so that tests use a client of the same minor version.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
