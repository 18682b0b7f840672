//go:build !unix

package kafka_test

import "time"

// cpuTime is not measured here: cpu-µs/msg reads 0.
func cpuTime() time.Duration { return 0 }
