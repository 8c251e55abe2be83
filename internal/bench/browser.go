package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/skolbro/skolbro/internal/browsertest"
)

// browser is one simulated person's browser (package browsertest) whose
// failures name the login step.
type browser struct {
	b *browsertest.Browser
}

func newBrowser(rt http.RoundTripper) *browser { return &browser{b: browsertest.New(rt)} }

type page = browsertest.Page

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

// check turns a transport error or a non-200 page into a stepError.
func check(p page, err error, step string) (page, error) {
	if err != nil {
		if errors.Is(err, browsertest.ErrNotOneForm) {
			err = errUnexpectedPage
		}
		return page{}, &stepError{step: step, err: err}
	}
	if p.Status != http.StatusOK {
		return p, &stepError{step: step, status: p.Status}
	}
	return p, nil
}

func (b *browser) get(ctx context.Context, u, step string) (page, error) {
	p, err := b.b.Get(ctx, u)
	return check(p, err, step)
}

// submit posts the only form on p with extra fields added.
func (b *browser) submit(ctx context.Context, p page, extra url.Values, step string) (page, error) {
	next, err := b.b.Submit(ctx, p, extra)
	return check(next, err, step)
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
	if p.URL.Path != "/demo/idp/sso" {
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
	if !strings.HasPrefix(p.URL.Path, "/demo/vendor/") || p.Body != "ok" {
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
