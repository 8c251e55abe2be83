package config

import (
	"strings"
	"testing"
)

// TestLogoutKeys: the logout settings are bounded, and an error names the
// organiser's key.
func TestLogoutKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml, key string
	}{
		{"organiser:\n  logout:\n    session_ttl: 2000h\n", "organiser.logout.session_ttl"},
		{"organiser:\n  logout:\n    session_ttl: 1s\n", "organiser.logout.session_ttl"},
		{"organiser:\n  logout:\n    vendor_wait: 1m\n", "organiser.logout.vendor_wait"},
		{"organisers:\n  - id: a\n  - id: b\n    logout:\n      vendor_wait: 10ms\n", "organisers[1].logout.vendor_wait"},
	} {
		c, err := Parse(fuzzPath, []byte(tc.yaml))
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		err = c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: no problem naming %s", tc.yaml, tc.key)
		}
	}
	c, err := Parse(fuzzPath, []byte("organiser:\n  logout:\n    session_ttl: 8h\n    vendor_wait: 3s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil && strings.Contains(err.Error(), "logout") {
		t.Errorf("good logout settings refused: %v", err)
	}
}
