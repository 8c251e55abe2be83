package samlsp

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/skolbro/skolbro/internal/samlslo"
	"github.com/skolbro/skolbro/internal/testidp"
)

const (
	spSLOURL  = "https://bridge.example.se/saml/sp/slo"
	idpSLOURL = "https://idp.skola.example.se/idp/slo"
)

// withSLO gives the SP a signing key and both SLO endpoints, and the test
// IdP the SP's key and SLO endpoint.
func withSLO(t *testing.T) fixtureOpt {
	return func(c *Config, idp *testidp.IdP) {
		k := mustKeys(t)
		c.Signer = signer(t, k.idpEC)
		c.SLOURL = spSLOURL
		c.IdPSLO = []samlslo.Endpoint{{Binding: samlslo.BindingRedirect, Location: idpSLOURL}}
		idp.SLOURL = idpSLOURL
		idp.SP = testidp.SP{EntityID: spEntityID, Cert: k.idpEC.Cert, SLOURL: spSLOURL}
	}
}

func TestSPMetadataListsSLOAndSigningKey(t *testing.T) {
	f := newFixture(t, withSLO(t))
	md, err := f.sp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<md:KeyDescriptor use="signing">`,
		`<md:SingleLogoutService Binding="` + HTTPRedirectBinding + `" Location="` + spSLOURL + `"/>`,
		`<md:SingleLogoutService Binding="` + HTTPPostBinding + `" Location="` + spSLOURL + `"/>`} {
		if !strings.Contains(string(md), want) {
			t.Errorf("SP metadata lacks %s:\n%s", want, md)
		}
	}
	plain := newFixture(t)
	if plain.sp.CanLogout() {
		t.Errorf("an SP without SLO configuration says it can log out")
	}
}

// TestCase50_UpstreamLogoutRequests: the IdP's signed LogoutRequest is read
// with its NameID and SessionIndex; an unsigned one, or one signed by a key
// not in the IdP's metadata, is refused.
func TestCase50_UpstreamLogoutRequests(t *testing.T) {
	f := newFixture(t, withSLO(t))
	f.expectSuccess(t, f.sp, f.respond(f.login(browserA)), browserA)
	si, ok := f.idp.Session(f.user.Login)
	if !ok {
		t.Fatal("the test IdP holds no session")
	}
	u, id, err := f.idp.LogoutRequestURL(f.user.Login)
	if err != nil {
		t.Fatal(err)
	}
	in, err := samlslo.Read(httptest.NewRequest(http.MethodGet, u, nil))
	if err != nil {
		t.Fatal(err)
	}
	req, err := f.sp.ParseLogoutRequest(in)
	if err != nil {
		t.Fatalf("a signed request was refused: %v", err)
	}
	if req.ID != id || req.NameID.Value != f.user.NameID || len(req.SessionIndexes) != 1 || req.SessionIndexes[0] != si {
		t.Errorf("read %+v", req)
	}

	u, _, err = f.idp.LogoutRequestURL(f.user.Login, testidp.Unsigned())
	if err != nil {
		t.Fatal(err)
	}
	in, err = samlslo.Read(httptest.NewRequest(http.MethodGet, u, nil))
	if err != nil {
		t.Fatal(err)
	}
	var e *samlslo.Error
	if _, err := f.sp.ParseLogoutRequest(in); !errors.As(err, &e) || e.Reason != samlslo.ReasonUnsigned {
		t.Errorf("an unsigned request: %v", err)
	}
	f.idp.Signer = signer(t, f.keys.attacker)
	u, _, err = f.idp.LogoutRequestURL(f.user.Login)
	if err != nil {
		t.Fatal(err)
	}
	in, err = samlslo.Read(httptest.NewRequest(http.MethodGet, u, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.sp.ParseLogoutRequest(in); !errors.As(err, &e) || e.Reason != samlslo.ReasonBadSignature {
		t.Errorf("a request signed by another key: %v", err)
	}
}

// TestLogoutRequestToTheIdP: the SP's LogoutRequest names the NameID and
// SessionIndex the IdP gave; the IdP ends that session and its signed
// answer is read as Success.
func TestLogoutRequestToTheIdP(t *testing.T) {
	f := newFixture(t, withSLO(t))
	a := f.expectSuccess(t, f.sp, f.respond(f.login(browserA)), browserA)
	id, out, err := f.sp.LogoutRequestTo(samlslo.NameID{Value: a.NameID, Format: a.NameIDFormat, NameQualifier: a.NameQualifier, SPNameQualifier: a.SPNameQualifier}, a.SessionIndex, "")
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	f.idp.ServeSLO(w, httptest.NewRequest(http.MethodGet, out.URL, nil))
	if w.Code != http.StatusFound {
		t.Fatalf("the IdP refused the SP's LogoutRequest: %d %s", w.Code, w.Body)
	}
	if _, open := f.idp.Session(f.user.Login); open {
		t.Errorf("the IdP's session is still open")
	}
	in, err := samlslo.Read(httptest.NewRequest(http.MethodGet, w.Header().Get("Location"), nil))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.sp.ParseLogoutResponse(in)
	if err != nil {
		t.Fatal(err)
	}
	if resp.InResponseTo != id || !resp.Success() {
		t.Errorf("answer %+v", resp)
	}
}
