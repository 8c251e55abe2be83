package samlxml_test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/keys"
	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/testidp"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// BenchmarkParse times the bounded parse of a school IdP's response (about
// 6 KB: a signed assertion with the demo pupil's attributes), every check
// included.
func BenchmarkParse(b *testing.B) {
	now := time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)
	pair, err := keys.Generate("bench idp", keys.RSA2048, now)
	if err != nil {
		b.Fatal(err)
	}
	s, err := xmlsig.NewSigner(pair)
	if err != nil {
		b.Fatal(err)
	}
	idp := testidp.New("https://idp.example.se/idp", "https://idp.example.se/sso", "skola.example.se", s)
	idp.Now = func() time.Time { return now }
	u, _ := idp.User("anna.a")
	resp, err := idp.Respond(testidp.Request{ID: "_req", ACSURL: "https://bridge.example.se/acs", SPEntityID: "https://bridge.example.se/sp"}, u)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := samlxml.Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}
