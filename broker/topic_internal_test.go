package broker

import (
	"strings"
	"testing"
)

// FuzzPlainTopic: what plainTopic accepts, checkTopic accepts as a
// publish topic; what it refuses, ValidTopic hands to checkTopic.
func FuzzPlainTopic(f *testing.F) {
	for _, s := range []string{"orders.placed", "a", "a.b.c", "a..b", ".a", "a.", "a.*", "a.>", "a b", "\x7f", "é.ü", strings.Repeat("a", 513)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		if plainTopic(topic) {
			if err := checkTopic(topic, false); err != nil {
				t.Fatalf("plainTopic(%q) = true, checkTopic = %v", topic, err)
			}
		}
	})
}
