//go:build race

package main

// buildFlags are the flags this test binary was built with that change
// what the compiler produces: go commands the tests run pass them too, so
// the generated project reuses the packages compiled for this test instead
// of compiling all of Ferry's dependencies a second time.
var buildFlags = []string{"-race"}
