package autopost

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

var nonceAttr = regexp.MustCompile(`<script nonce="([^"]+)">`)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, "https://sp.example.se:8443/saml/acs?x=1&y=2", map[string]string{
		"SAMLResponse": "PHNhbWw+",
		"RelayState":   `"><script>alert(1)</script>`,
	})
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	body := rec.Body.String()
	h := rec.Header()
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	m := nonceAttr.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no nonce on the script")
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{
		"default-src 'none'",
		"script-src 'nonce-" + m[1] + "'",
		"form-action https://sp.example.se:8443;",
		"frame-ancestors 'none'",
		"base-uri 'none'",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(body, "<script>alert") {
		t.Error("field value not escaped")
	}
	if !strings.Contains(body, `action="https://sp.example.se:8443/saml/acs?x=1&amp;y=2"`) {
		t.Errorf("action missing or not escaped:\n%s", body)
	}
	// Fields in a fixed (sorted) order; noscript fallback present.
	if i, j := strings.Index(body, `name="RelayState"`), strings.Index(body, `name="SAMLResponse"`); i < 0 || j < 0 || i > j {
		t.Error("fields missing or not sorted")
	}
	if !strings.Contains(body, "<noscript>") || !strings.Contains(body, `<button type="submit">`) {
		t.Error("no noscript submit button")
	}

	rec2 := httptest.NewRecorder()
	Write(rec2, "https://sp.example.se/acs", nil)
	if m2 := nonceAttr.FindStringSubmatch(rec2.Body.String()); m2 == nil || m2[1] == m[1] {
		t.Error("nonce reused across responses")
	}
}

func TestWriteRefusesBadAction(t *testing.T) {
	for name, action := range map[string]string{
		"javascript":   "javascript:alert(1)",
		"data":         "data:text/html,x",
		"relative":     "/acs",
		"no_host":      "https:///acs",
		"userinfo":     "https://user:pw@sp.example.se/acs",
		"csp_breakout": "https://sp.example.se;script-src *",
		"empty":        "",
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, action, map[string]string{"SAMLResponse": "x"})
			if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "<form") {
				t.Errorf("status %d, body %q", rec.Code, rec.Body.String())
			}
		})
	}
}

// BenchmarkWrite times the page that carries a response like the bridge's
// to a vendor: about 12 KB of base64 (an encrypted assertion).
func BenchmarkWrite(b *testing.B) {
	value := strings.Repeat("PHNhbWxwOlJlc3BvbnNlIHhtbG5zOnNhbWxwPSJ1cm4+/=", 270)
	b.ReportAllocs()
	for b.Loop() {
		Write(httptest.NewRecorder(), "https://sp.example.se/saml/acs", map[string]string{"SAMLResponse": value, "RelayState": "rs"})
	}
}
