package metrics

import (
	"fmt"
	"strings"
	"testing"
)

// TestCase36_PersonalNumberInValueCounted: the counter is labelled by the
// attribute name only.
func TestCase36_PersonalNumberInValueCounted(t *testing.T) {
	m, reg := newMetrics(t)
	const mail = "urn:oid:0.9.2342.19200300.100.1.3"
	m.PersonalNumberInValue(mail)
	m.PersonalNumberInValue(mail)
	m.PersonalNumberInValue("displayName")
	out := gatherText(t, reg)
	for _, want := range []string{
		fmt.Sprintf(`%s{attribute=%q} 2`, NamePersonalNumberInValue, mail),
		fmt.Sprintf(`%s{attribute="displayName"} 1`, NamePersonalNumberInValue),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %s:\n%s", want, out)
		}
	}
}
