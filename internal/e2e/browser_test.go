package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/skolbro/skolbro/internal/browsertest"
)

// browser is a simulated browser (package browsertest) that fails the test
// on transport errors, so that tests read as a person's steps.
type browser struct {
	t *testing.T
	b *browsertest.Browser
}

func newBrowser(t *testing.T, base *http.Client) *browser {
	t.Helper()
	return &browser{t: t, b: browsertest.New(base.Transport)}
}

type page struct {
	status int
	url    *url.URL
	body   string
}

func fromPage(p browsertest.Page) page { return page{status: p.Status, url: p.URL, body: p.Body} }

func (p page) raw() browsertest.Page {
	return browsertest.Page{Status: p.status, URL: p.url, Body: p.body}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	p, err := b.b.Get(context.Background(), u)
	if err != nil {
		b.t.Fatalf("GET: %v", err)
	}
	return fromPage(p)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	p, err := b.b.Post(context.Background(), u, form)
	if err != nil {
		b.t.Fatalf("POST: %v", err)
	}
	return fromPage(p)
}

// form is an HTML form found on a page.
type form struct {
	action string
	fields url.Values
}

// forms returns the page's forms, with actions resolved against its URL.
func (p page) forms() ([]form, error) {
	fs, err := p.raw().Forms()
	var out []form
	for _, f := range fs {
		out = append(out, form{action: f.Action, fields: f.Fields})
	}
	return out, err
}

// submit posts the page's only form, with extra fields added.
func (b *browser) submit(p page, extra url.Values) page {
	b.t.Helper()
	next, err := b.b.Submit(context.Background(), p.raw(), extra)
	if err != nil {
		b.t.Fatalf("submit at %s (status %d): %v: %.300s", p.url.Path, p.status, err, p.body)
	}
	return fromPage(next)
}

func (p page) String() string { return fmt.Sprintf("%d %s", p.status, p.url.Path) }
