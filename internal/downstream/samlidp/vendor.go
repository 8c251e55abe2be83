// Package samlidp is the bridge as SAML IdP towards vendors: it validates
// AuthnRequests from vendor SPs known by their metadata, and builds signed
// (and, where the vendor publishes a key, encrypted) responses from the
// output of the release step. It never sees an upstream identity.
package samlidp

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/crewjam/saml"

	"github.com/skolbro/skolbro/internal/samlslo"
)

// Binding URIs.
const (
	BindingRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	BindingPOST     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
)

// ACS is one of a vendor's assertion consumer services (HTTP-POST only).
type ACS struct {
	Index     int
	URL       string
	IsDefault bool
}

// Vendor is a vendor SP as its metadata describes it.
type Vendor struct {
	EntityID string
	// File is the metadata file it came from (for error messages).
	File string
	// ACS lists the HTTP-POST assertion consumer services, in metadata order.
	ACS []ACS
	// SigningCerts verify the vendor's signed AuthnRequests.
	SigningCerts []*x509.Certificate
	// EncryptionCert, when set, is the key assertions are encrypted to.
	EncryptionCert *x509.Certificate
	// EncryptionMethods are the md:EncryptionMethod algorithms it lists.
	EncryptionMethods []string
	// SigningMethods are the alg:SigningMethod algorithms its metadata
	// announces, in its order of preference (samlmeta.SigningMethods).
	SigningMethods []string
	// AuthnRequestsSigned means unsigned requests are refused.
	AuthnRequestsSigned bool
	// WantsSignedResponse is set when the metadata says
	// WantAssertionsSigned="false": such an SP checks the Response's
	// signature, so the Response is signed too (beside the assertion)
	// unless the policy chose otherwise. An absent attribute asks for
	// nothing.
	WantsSignedResponse bool
	// RequestedAttributes are the SAML names of md:RequestedAttribute.
	RequestedAttributes []string
	// SLO are the vendor's SingleLogoutService endpoints with the
	// HTTP-Redirect or HTTP-POST binding, in metadata order. They are
	// empty when the metadata lists no signing key: the bridge could not
	// verify the vendor's logout messages (SLONoKey is then set).
	SLO      []samlslo.Endpoint
	SLONoKey bool
}

// VendorFromMetadata reads one SP entity. URLs that a browser would be sent
// to must be https (http only when devMode allows it): a javascript:, data:
// or plain http: ACS is refused (SECURITY.md case 22).
func VendorFromMetadata(file string, ed *saml.EntityDescriptor, devMode bool) (*Vendor, error) {
	if ed.EntityID == "" {
		return nil, errors.New("entityID is missing")
	}
	if len(ed.SPSSODescriptors) != 1 {
		return nil, fmt.Errorf("entity %q: expected exactly one SPSSODescriptor, found %d", ed.EntityID, len(ed.SPSSODescriptors))
	}
	sd := ed.SPSSODescriptors[0]
	v := &Vendor{EntityID: ed.EntityID, File: file}
	if sd.AuthnRequestsSigned != nil {
		v.AuthnRequestsSigned = *sd.AuthnRequestsSigned
	}
	if sd.WantAssertionsSigned != nil && !*sd.WantAssertionsSigned {
		v.WantsSignedResponse = true
	}
	for _, a := range sd.AssertionConsumerServices {
		if a.Binding != BindingPOST {
			continue
		}
		if err := CheckBrowserURL(a.Location, devMode); err != nil {
			return nil, fmt.Errorf("entity %q: AssertionConsumerService index %d: %w", ed.EntityID, a.Index, err)
		}
		v.ACS = append(v.ACS, ACS{Index: a.Index, URL: a.Location, IsDefault: a.IsDefault != nil && *a.IsDefault})
	}
	if len(v.ACS) == 0 {
		return nil, fmt.Errorf("entity %q: no HTTP-POST AssertionConsumerService", ed.EntityID)
	}
	for _, kd := range sd.KeyDescriptors {
		var certs []*x509.Certificate
		for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
			c, err := parseCert(xc.Data)
			if err != nil {
				return nil, fmt.Errorf("entity %q: KeyDescriptor: %w", ed.EntityID, err)
			}
			certs = append(certs, c)
		}
		switch kd.Use {
		case "signing":
			v.SigningCerts = append(v.SigningCerts, certs...)
		case "encryption":
			if v.EncryptionCert == nil && len(certs) > 0 {
				v.EncryptionCert = certs[0]
				for _, m := range kd.EncryptionMethods {
					v.EncryptionMethods = append(v.EncryptionMethods, m.Algorithm)
				}
			}
		case "":
			v.SigningCerts = append(v.SigningCerts, certs...)
			if v.EncryptionCert == nil && len(certs) > 0 {
				v.EncryptionCert = certs[0]
				for _, m := range kd.EncryptionMethods {
					v.EncryptionMethods = append(v.EncryptionMethods, m.Algorithm)
				}
			}
		}
	}
	if v.AuthnRequestsSigned && len(v.SigningCerts) == 0 {
		return nil, fmt.Errorf("entity %q: AuthnRequestsSigned is true but no signing key is listed", ed.EntityID)
	}
	for _, acs := range sd.AttributeConsumingServices {
		for _, ra := range acs.RequestedAttributes {
			v.RequestedAttributes = append(v.RequestedAttributes, ra.Name)
		}
	}
	sort.Strings(v.RequestedAttributes)
	for _, e := range sd.SingleLogoutServices {
		if e.Binding != BindingRedirect && e.Binding != BindingPOST {
			continue // SOAP and others: the bridge logs out through the browser
		}
		for i, u := range []string{e.Location, e.ResponseLocation} {
			if i == 1 && u == "" {
				continue // no ResponseLocation: responses go to Location
			}
			if err := CheckBrowserURL(u, devMode); err != nil {
				return nil, fmt.Errorf("entity %q: SingleLogoutService: %w", ed.EntityID, err)
			}
		}
		v.SLO = append(v.SLO, samlslo.Endpoint{Binding: e.Binding, Location: e.Location, ResponseLocation: e.ResponseLocation})
	}
	if len(v.SLO) > 0 && len(v.SigningCerts) == 0 {
		v.SLO, v.SLONoKey = nil, true
	}
	return v, nil
}

// CheckBrowserURL refuses URLs that must never be a browser's target.
func CheckBrowserURL(raw string, devMode bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("not an absolute https URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if devMode {
			return nil
		}
		return errors.New("plain http URL (allowed only in dev_mode)")
	}
	return fmt.Errorf("scheme %q is not allowed", u.Scheme)
}

// DefaultACS returns the ACS to use when a request names none: the one
// marked default, else the first.
func (v *Vendor) DefaultACS() ACS {
	for _, a := range v.ACS {
		if a.IsDefault {
			return a
		}
	}
	return v.ACS[0]
}

// ACSByURL returns the ACS with exactly this URL.
func (v *Vendor) ACSByURL(u string) (ACS, bool) {
	for _, a := range v.ACS {
		if a.URL == u {
			return a, true
		}
	}
	return ACS{}, false
}

// ACSByIndex returns the ACS with this index.
func (v *Vendor) ACSByIndex(i int) (ACS, bool) {
	for _, a := range v.ACS {
		if a.Index == i {
			return a, true
		}
	}
	return ACS{}, false
}

func parseCert(data string) (*x509.Certificate, error) {
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, data)
	der, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		return nil, errors.New("certificate is not base64")
	}
	return x509.ParseCertificate(der)
}
