package samlsp

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/testidp"
)

// FuzzHandleResponse (SECURITY.md case 19) feeds mutated response XML to
// HandleResponse: it must never panic, and every failure must be an
// *Error with a reason and a 4xx/5xx status.
func FuzzHandleResponse(f *testing.F) {
	fx := newFixture(f)
	req := fx.login(browserA)
	seed := func(opts ...testidp.Option) {
		s, err := fx.idp.Respond(req, fx.user, opts...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(decode(f, s), true)
	}
	seed()
	seed(testidp.SignResponse())
	seed(testidp.UnsignedAssertion())
	seed(testidp.Status(testidp.StatusResponder, testidp.StatusAuthnFailed))
	seed(testidp.BeforeSigning(restyle("adfs_default_namespace")))
	seed(testidp.AfterSigning(xsw(f, 4, true)))
	seed(testidp.AfterSigning(func(doc *etree.Document) {
		n := assertionOf(doc).FindElement(pNameID)
		n.CreateComment("")
	}))
	f.Add(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a" Version="2.0"/>`, true)
	f.Add(`<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`, true)
	f.Add("not base64 at all", false)

	f.Fuzz(func(t *testing.T, in string, asXML bool) {
		resp := in
		if asXML {
			resp = encode(in)
		}
		a, state, err := fx.sp.HandleResponse(context.Background(), resp, browserA)
		if err == nil {
			if a == nil {
				t.Fatal("nil assertion without an error")
			}
			return
		}
		if a != nil || state != nil {
			t.Fatal("refusal released data")
		}
		var e *Error
		if !errors.As(err, &e) || e.Reason == "" || e.Status < 400 || e.Status > 599 {
			t.Fatalf("error %v is not a proper *Error", err)
		}
		if strings.ContainsAny(err.Error(), "<>") {
			t.Fatalf("error %q quotes input", err.Error())
		}
		if e.Status == http.StatusServiceUnavailable {
			t.Fatalf("store_unavailable without a store fault")
		}
	})
}
