package server

import (
	"net/http/httptest"
	"testing"
)

// Under overload the bridge sheds the requests that start a login before
// those that finish one (see Handler); startsLogin tells them apart for
// every organiser, the hub and both protocols.
func TestStartsLogin(t *testing.T) {
	for path, want := range map[string]bool{
		"/saml/idp/sso":                   true,
		"/o/grannkommun/saml/idp/sso":     true,
		"/hub/saml/idp/sso":               true,
		"/oidc/authorize":                 true,
		"/o/grannkommun/oidc/authorize":   true,
		"/saml/sp/acs":                    false,
		"/o/grannkommun/saml/sp/acs":      false,
		"/oidc/token":                     false,
		"/saml/idp/metadata":              false,
		"/saml/idp/slo":                   false,
		"/hub/discovery":                  false,
		"/saml/idp/sso/../../saml/sp/acs": false,
	} {
		if got := startsLogin(httptest.NewRequest("GET", path, nil)); got != want {
			t.Errorf("startsLogin(%s) = %v, want %v", path, got, want)
		}
	}
}
