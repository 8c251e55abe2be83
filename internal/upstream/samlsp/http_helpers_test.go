package samlsp

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func postForm(t *testing.T, h http.Handler, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, idpSSOURL, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

var (
	actionRE = regexp.MustCompile(`<form[^>]* action="([^"]*)"`)
	inputRE  = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// formFields reads the auto-post page: "action" and the hidden fields.
func formFields(t *testing.T, page string) map[string]string {
	t.Helper()
	out := map[string]string{}
	m := actionRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form in page")
	}
	out["action"] = html.UnescapeString(m[1])
	for _, f := range inputRE.FindAllStringSubmatch(page, -1) {
		out[html.UnescapeString(f[1])] = html.UnescapeString(f[2])
	}
	return out
}
