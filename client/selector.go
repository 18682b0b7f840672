package client

import (
	"math/rand/v2"
	"sync/atomic"
)

// Candidates are the instances a Selector may pick from: at least one.
type Candidates interface {
	// Len returns the number of candidates.
	Len() int
	// ID returns candidate i's instance ID.
	ID(i int) string
	// InFlight returns the calls this client has in flight to candidate i.
	InFlight(i int) int64
	// Failures returns candidate i's recent health failures in a row
	// (unavailable, deadline exceeded, internal…), 0 once it succeeded or
	// has not failed for a while.
	Failures(i int) int
}

// Selector picks one of the candidates for a call. A client makes one per
// service, so a Selector may keep per-service state; Select is called
// concurrently.
type Selector interface {
	// Select returns the index of the chosen candidate, in [0, c.Len()).
	Select(c Candidates) int
}

// RoundRobin returns a Selector that takes the candidates in turn.
func RoundRobin() Selector { return new(roundRobin) }

type roundRobin struct{ next atomic.Uint64 }

func (r *roundRobin) Select(c Candidates) int {
	return int((r.next.Add(1) - 1) % uint64(c.Len()))
}

// Random returns a Selector that picks uniformly at random.
func Random() Selector { return random{} }

type random struct{}

func (random) Select(c Candidates) int { return rand.IntN(c.Len()) }

// P2C returns the default Selector, the power of two choices: of two
// candidates drawn at random, the one with the lower load — calls in
// flight, each recent failure in a row counting as failurePenalty more.
// Without the penalty a dead instance, which answers at once and so never
// has calls in flight, would be preferred.
func P2C() Selector { return p2c{} }

type p2c struct{}

func (p2c) Select(c Candidates) int {
	n := c.Len()
	if n == 1 {
		return 0
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	if load(c, j) < load(c, i) {
		return j
	}
	return i
}

// failurePenalty is how many calls in flight a recent failure weighs in P2C.
const failurePenalty = 4

func load(c Candidates, i int) int64 {
	return c.InFlight(i) + failurePenalty*int64(c.Failures(i))
}
