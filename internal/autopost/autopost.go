// Package autopost writes the HTML page that carries a SAML message to its
// recipient with the HTTP-POST binding: a form of hidden fields that a
// nonce-allowed script submits, with a <noscript> button as fallback.
package autopost

import (
	"bytes"
	"crypto/rand"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

var page = template.Must(template.New("autopost").Parse(`<!DOCTYPE html>
<html lang="sv">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>Skickar vidare</title>
</head>
<body>
<form id="autopost" method="post" action="{{.Action}}">
{{- .Inputs}}
<noscript>
<p>Tryck på knappen för att fortsätta. / Press the button to continue.</p>
<button type="submit">Fortsätt / Continue</button>
</noscript>
</form>
<script nonce="{{.Nonce}}">document.getElementById("autopost").submit();</script>
</body>
</html>
`))

// Write answers with a page that POSTs fields to action. action must be an
// absolute http or https URL; anything else is answered with 500 and
// nothing is posted. The response is not cached, cannot be framed, and its
// Content-Security-Policy allows only the one inline script (by nonce) and
// form submission only to action's origin.
func Write(w http.ResponseWriter, action string, fields map[string]string) {
	write(w, action, fields, false)
}

// WriteInFrame is Write for a page that the bridge's own pages frame
// (front-channel Single Logout): it may be framed by its own origin only.
func WriteInFrame(w http.ResponseWriter, action string, fields map[string]string) {
	write(w, action, fields, true)
}

func write(w http.ResponseWriter, action string, fields map[string]string, framed bool) {
	u, err := url.Parse(action)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		strings.ContainsAny(u.Host, " ;,'\"") {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	// The hidden inputs are written here, each name and value escaped
	// for a double-quoted attribute: html/template escapes a value rune by
	// rune and writes every '+' and '=' of base64 as an entity, which cost
	// more than the rest of the page for a response of 10 KB or more.
	var inputs strings.Builder
	for _, n := range names {
		inputs.WriteString("\n<input type=\"hidden\" name=\"")
		inputs.WriteString(html.EscapeString(n))
		inputs.WriteString("\" value=\"")
		inputs.WriteString(html.EscapeString(fields[n]))
		inputs.WriteString("\">")
	}
	data := struct {
		Action string
		Inputs template.HTML
		Nonce  string
	}{Action: action, Inputs: template.HTML(inputs.String()), Nonce: rand.Text()}
	var buf bytes.Buffer
	buf.Grow(inputs.Len() + len(action) + 1024)
	if err := page.Execute(&buf, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	origin := u.Scheme + "://" + u.Host
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	ancestors := "'none'"
	if framed {
		h.Set("X-Frame-Options", "SAMEORIGIN")
		ancestors = "'self'"
	}
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+data.Nonce+
		"'; form-action "+origin+"; base-uri 'none'; frame-ancestors "+ancestors)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
