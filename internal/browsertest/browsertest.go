// Package browsertest is a simulated browser for end-to-end tests and the
// load benchmark: its own cookie jar, following redirects, and submitting
// the auto-posting forms SAML uses, as a person's browser with JavaScript
// on would.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// MaxBody bounds a page read.
const MaxBody = 4 << 20

// Browser is one simulated browser.
type Browser struct {
	Client *http.Client
}

// New returns a browser with a fresh cookie jar over rt.
func New(rt http.RoundTripper) *Browser {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &Browser{Client: &http.Client{Transport: rt, Jar: jar}}
}

// Page is a response as the browser saw it, after redirects.
type Page struct {
	Status int
	URL    *url.URL
	Header http.Header
	Body   string
}

func (p Page) String() string { return fmt.Sprintf("%d %s", p.Status, p.URL.Path) }

// Get loads u.
func (b *Browser) Get(ctx context.Context, u string) (Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Page{}, err
	}
	return b.Do(req)
}

// Post submits form to u.
func (b *Browser) Post(ctx context.Context, u string, form url.Values) (Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return Page{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

// Do sends req and reads the final page.
func (b *Browser) Do(req *http.Request) (Page, error) {
	resp, err := b.Client.Do(req)
	if err != nil {
		return Page{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return Page{}, err
	}
	return Page{Status: resp.StatusCode, URL: resp.Request.URL, Header: resp.Header, Body: string(body)}, nil
}

// Form is an HTML form on a page.
type Form struct {
	// Action is resolved against the page's URL.
	Action string
	// Fields are the hidden (and untyped) inputs.
	Fields url.Values
	// Buttons are named submit buttons: name -> values.
	Buttons map[string][]string
}

// Forms returns the page's forms. It tokenizes rather than builds a tree:
// the load benchmark runs it for every step of every login.
func (p Page) Forms() ([]Form, error) {
	z := html.NewTokenizer(strings.NewReader(p.Body))
	var out []Form
	open := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			if err := z.Err(); err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return out, nil
		case html.EndTagToken:
			if name, _ := z.TagName(); string(name) == "form" {
				open = false
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, more := z.TagName()
			a := map[string]string{}
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				a[string(k)] = string(v)
			}
			switch string(name) {
			case "form":
				act, err := p.URL.Parse(a["action"])
				if err != nil {
					act = p.URL
				}
				out = append(out, Form{Action: act.String(), Fields: url.Values{}, Buttons: map[string][]string{}})
				open = true
			case "input":
				if open && a["name"] != "" && (a["type"] == "hidden" || a["type"] == "") {
					out[len(out)-1].Fields.Add(a["name"], a["value"])
				}
			case "button":
				if open && a["name"] != "" {
					f := out[len(out)-1]
					f.Buttons[a["name"]] = append(f.Buttons[a["name"]], a["value"])
				}
			}
		}
	}
}

// ErrNotOneForm is returned by Submit for a page without exactly one form.
var ErrNotOneForm = errors.New("browsertest: the page does not have exactly one form")

// OnlyForm returns the page's only form.
func (p Page) OnlyForm() (Form, error) {
	fs, err := p.Forms()
	if err != nil {
		return Form{}, err
	}
	if len(fs) != 1 {
		return Form{}, ErrNotOneForm
	}
	return fs[0], nil
}

// Submit posts the page's only form with extra fields added, as pressing
// its button (or its auto-submit script) would.
func (b *Browser) Submit(ctx context.Context, p Page, extra url.Values) (Page, error) {
	f, err := p.OnlyForm()
	if err != nil {
		return Page{}, err
	}
	for k, vs := range extra {
		for _, v := range vs {
			f.Fields.Add(k, v)
		}
	}
	return b.Post(ctx, f.Action, f.Fields)
}
