// Package bench compares each Ferry transport with the raw library under it
// on the same workload: a unary echo of a small message, at parallelism 1
// and 64. It holds only benchmarks; see README.md for the figures and how
// to rerun them.
package bench
