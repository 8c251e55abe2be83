package bench

import (
	"bytes"
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

// maxPage bounds what a simulated browser reads of one page.
const maxPage = 1 << 20

// browser is one simulated person's browser: its own cookie jar,
// following redirects, and submitting the auto-posting forms SAML uses as
// a browser with JavaScript on would.
type browser struct {
	client *http.Client
}

func newBrowser(rt http.RoundTripper) *browser {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &browser{client: &http.Client{Transport: rt, Jar: jar}}
}

type page struct {
	status int
	url    *url.URL
	body   []byte
}

// stepError is a login that failed at one step. It carries the status
// and the step's name, never the page: pages carry SAML messages.
type stepError struct {
	step   string
	status int // 0 when no answer came
	err    error
}

func (e *stepError) Error() string {
	if e.status != 0 {
		return fmt.Sprintf("bench: %s: status %d", e.step, e.status)
	}
	// A url.Error repeats the URL, whose query carries a SAML message.
	inner := e.err
	var ue *url.Error
	if errors.As(inner, &ue) {
		inner = ue.Err
	}
	return fmt.Sprintf("bench: %s: %v", e.step, inner)
}

func (e *stepError) Unwrap() error { return e.err }

var errUnexpectedPage = errors.New("unexpected page")

func (b *browser) do(req *http.Request, step string) (page, error) {
	resp, err := b.client.Do(req)
	if err != nil {
		return page{}, &stepError{step: step, err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPage))
	if err != nil {
		return page{}, &stepError{step: step, err: err}
	}
	p := page{status: resp.StatusCode, url: resp.Request.URL, body: body}
	if p.status != http.StatusOK {
		return p, &stepError{step: step, status: p.status}
	}
	return p, nil
}

func (b *browser) get(ctx context.Context, u, step string) (page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return page{}, &stepError{step: step, err: err}
	}
	return b.do(req, step)
}

// submit posts the first form on p with extra fields added.
func (b *browser) submit(ctx context.Context, p page, extra url.Values, step string) (page, error) {
	action, fields, err := firstForm(p)
	if err != nil {
		return page{}, &stepError{step: step, err: err}
	}
	for k, vs := range extra {
		for _, v := range vs {
			fields.Add(k, v)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(fields.Encode()))
	if err != nil {
		return page{}, &stepError{step: step, err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req, step)
}

// firstForm returns the action (resolved against the page's URL) and the
// hidden fields of the page's first form.
func firstForm(p page) (*url.URL, url.Values, error) {
	z := html.NewTokenizer(bytes.NewReader(p.body))
	var action *url.URL
	fields := url.Values{}
	for {
		switch z.Next() {
		case html.ErrorToken:
			if action != nil {
				return action, fields, nil
			}
			return nil, nil, errUnexpectedPage
		case html.EndTagToken:
			if name, _ := z.TagName(); action != nil && string(name) == "form" {
				return action, fields, nil
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, more := z.TagName()
			attrs := map[string]string{}
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				attrs[string(k)] = string(v)
			}
			switch string(name) {
			case "form":
				if action == nil {
					a, err := p.url.Parse(attrs["action"])
					if err != nil {
						return nil, nil, errUnexpectedPage
					}
					action = a
				}
			case "input":
				if t := attrs["type"]; action != nil && attrs["name"] != "" && (t == "hidden" || t == "") {
					fields.Add(attrs["name"], attrs["value"])
				}
			}
		}
	}
}

// login runs one whole login through the bridge: the vendor's request,
// the bridge's redirect to the school IdP, the IdP's user picker, its
// auto-post to the bridge's ACS, and the bridge's answer to the vendor,
// which checks it (SAML: the response with crewjam/saml; OIDC: the code
// redeemed and the ID token verified with go-oidc).
func (w *world) login(ctx context.Context, b *browser, protocol string) error {
	start, ctx, err := w.startLogin(ctx, protocol)
	if err != nil {
		return &stepError{step: "vendor_request", err: err}
	}
	p, err := b.get(ctx, start, "sso")
	if err != nil {
		return err
	}
	if p.url.Path != "/demo/idp/sso" {
		return &stepError{step: "sso", err: errUnexpectedPage}
	}
	p, err = b.submit(ctx, p, url.Values{"user": {w.user()}}, "idp")
	if err != nil {
		return err
	}
	p, err = b.submit(ctx, p, nil, "acs")
	if err != nil {
		return err
	}
	if protocol == "saml" {
		if p, err = b.submit(ctx, p, nil, "vendor"); err != nil {
			return err
		}
	}
	// The vendor's ACS or OIDC callback answers "ok" once it has accepted
	// what the bridge sent.
	if !strings.HasPrefix(p.url.Path, "/demo/vendor/") || string(p.body) != "ok" {
		return &stepError{step: "vendor", err: errUnexpectedPage}
	}
	return nil
}

// startOnly runs the first half of a login (up to the IdP's picker), which
// leaves the bridge's pending-login record in the store.
func (w *world) startOnly(ctx context.Context, b *browser, protocol string) error {
	start, ctx, err := w.startLogin(ctx, protocol)
	if err != nil {
		return &stepError{step: "vendor_request", err: err}
	}
	_, err = b.get(ctx, start, "sso")
	return err
}

// errorClass names why a login failed, for the counts in the report.
func errorClass(err error) string {
	var se *stepError
	if errors.As(err, &se) {
		switch {
		case se.status == http.StatusTooManyRequests:
			return "429"
		case se.status == http.StatusServiceUnavailable:
			return "503"
		case se.status >= 500:
			return "5xx"
		case se.status >= 400:
			return "4xx"
		case se.status != 0:
			return "status"
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, errUnexpectedPage):
		return "bad_page"
	}
	return "transport"
}
