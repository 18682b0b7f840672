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
// candidates drawn at random, the one with fewer calls in flight.
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
	if c.InFlight(j) < c.InFlight(i) {
		return j
	}
	return i
}
