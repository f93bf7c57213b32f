//go:build tools

// Package tools pins the helm CLI that ../setup.ts builds.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
