package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// browser is a simulated browser: its own cookie jar, following redirects,
// and submitting the auto-posting forms SAML uses, as a person's browser
// would with JavaScript on.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T, base *http.Client) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: base.Transport, Jar: jar}
	return &browser{t: t, client: c}
}

type page struct {
	status int
	url    *url.URL
	body   string
}

func (b *browser) get(u string) page {
	b.t.Helper()
	resp, err := b.client.Get(u)
	if err != nil {
		b.t.Fatalf("GET: %v", err)
	}
	return readPage(b.t, resp)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	resp, err := b.client.PostForm(u, form)
	if err != nil {
		b.t.Fatalf("POST: %v", err)
	}
	return readPage(b.t, resp)
}

func readPage(t *testing.T, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body)}
}

// form is an HTML form found on a page.
type form struct {
	action string
	fields url.Values
	// buttons are named submit buttons: name -> values.
	buttons map[string][]string
}

// forms returns the page's forms, with actions resolved against its URL.
func (p page) forms() ([]form, error) {
	doc, err := html.Parse(strings.NewReader(p.body))
	if err != nil {
		return nil, err
	}
	var out []form
	var cur *form
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			a := map[string]string{}
			for _, at := range n.Attr {
				a[at.Key] = at.Val
			}
			switch n.Data {
			case "form":
				act, err := p.url.Parse(a["action"])
				if err != nil {
					act = p.url
				}
				out = append(out, form{action: act.String(), fields: url.Values{}, buttons: map[string][]string{}})
				cur = &out[len(out)-1]
			case "input":
				if cur != nil && a["name"] != "" && (a["type"] == "hidden" || a["type"] == "") {
					cur.fields.Add(a["name"], a["value"])
				}
			case "button":
				if cur != nil && a["name"] != "" {
					cur.buttons[a["name"]] = append(cur.buttons[a["name"]], a["value"])
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out, nil
}

// submit posts the page's only form, with extra fields added.
func (b *browser) submit(p page, extra url.Values) page {
	b.t.Helper()
	fs, err := p.forms()
	if err != nil || len(fs) != 1 {
		b.t.Fatalf("expected one form on the page at %s (status %d), found %d: %.300s", p.url.Path, p.status, len(fs), p.body)
	}
	f := fs[0]
	for k, vs := range extra {
		for _, v := range vs {
			f.fields.Add(k, v)
		}
	}
	return b.post(f.action, f.fields)
}

func (p page) String() string { return fmt.Sprintf("%d %s", p.status, p.url.Path) }
