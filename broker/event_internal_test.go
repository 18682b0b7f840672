package broker

import "testing"

// TestCallKey: the key of transport's Call context was learnt.
func TestCallKey(t *testing.T) {
	if callKey == nil {
		t.Fatal("callKey = nil: events put the Call in a context of their own")
	}
}
