//go:build !race

package ferrytest

// BuildFlags: see race.go.
var BuildFlags []string
