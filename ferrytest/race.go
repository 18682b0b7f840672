//go:build race

package ferrytest

// BuildFlags are the flags this test binary was built with that change what
// the compiler produces. A test that runs go build or go test (on a
// generated project, an example) passes them too, so that it reuses the
// packages already compiled for the tests instead of compiling every
// dependency a second time — minutes on a cold cache.
var BuildFlags = []string{"-race"}
