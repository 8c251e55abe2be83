package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCase36_PreviewListsAttributesDroppedForPersonalNumber: the release
// preview tells the admin which upstream attributes carried a personal
// number in recent logins (names, counts, dates; never a value), says so
// when the record cannot be read, and shows nothing when there is none.
func TestCase36_PreviewListsAttributesDroppedForPersonalNumber(t *testing.T) {
	t.Parallel()
	const mail = "urn:oid:0.9.2342.19200300.100.1.3"
	seen := time.Date(2026, 2, 19, 7, 30, 0, 0, time.UTC)
	tests := []struct {
		name            string
		fn              func(ctx context.Context) ([]DroppedAttribute, error)
		present, absent []string
	}{
		{"recent drops",
			func(context.Context) ([]DroppedAttribute, error) {
				return []DroppedAttribute{
					{Attribute: "urn:x:login", Count: 2, LastSeen: seen},
					{Attribute: mail, Count: 17, LastSeen: seen},
				}, nil
			},
			[]string{`id="pnr-in-values"`, "<code>" + mail + "</code>", "<code>mail</code>", "<td>17</td>",
				"<code>urn:x:login</code>", "<td>2</td>", "2026-02-19"},
			nil},
		{"none", func(context.Context) ([]DroppedAttribute, error) { return nil, nil },
			nil, []string{`id="pnr-in-values"`, "could not be read"}},
		{"record unavailable", func(context.Context) ([]DroppedAttribute, error) { return nil, errors.New("store down") },
			[]string{"could not be read"}, []string{`id="pnr-in-values"`, "store down"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(d *Deps) { d.PersonalNumbersInValues = tc.fn })
			c, _ := e.login()
			for _, path := range []string{"/admin/preview", "/admin/preview?vendor=learning-app"} {
				w := e.get(path, c)
				if w.Code != http.StatusOK {
					t.Fatalf("%s: status %d", path, w.Code)
				}
				body := w.Body.String()
				for _, p := range tc.present {
					if !strings.Contains(body, p) {
						t.Errorf("%s lacks %q", path, p)
					}
				}
				for _, a := range tc.absent {
					if strings.Contains(body, a) {
						t.Errorf("%s shows %q", path, a)
					}
				}
			}
		})
	}
}
