package config

import (
	"strings"
	"testing"
)

// An upstream's assurance mapping is checked like every other key: a level
// that is not one of the organiser's names the file and the key.
func TestUpstreamAssuranceProblemsNameTheKey(t *testing.T) {
	c, err := Parse("skolbro.yaml", []byte(`external_url: https://bro.example.se
organiser:
  id: kommun
  display_name: Kommun
  scope: kommun.example.se
  upstream:
    id: adfs
    metadata: upstream.xml
    stable_id: NameID
    assurance:
      map:
        http://schemas.microsoft.com/claims/multipleauthn: urn:x:not-a-level
      request:
        http://id.skolfederation.se/loa/2fa: http://schemas.microsoft.com/claims/multipleauthn
`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("Validate accepted the configuration")
	}
	var found bool
	for _, e := range splitErrors(err) {
		p, ok := e.(Problem)
		if ok && p.Key == "organiser.upstream.assurance.map" {
			found = true
			if p.File != "skolbro.yaml" || !strings.Contains(p.Message, "urn:x:not-a-level") {
				t.Errorf("problem %v", p)
			}
		}
		if ok && strings.HasPrefix(p.Key, "organiser.upstream.assurance.request") {
			t.Errorf("a valid request entry was refused: %v", p)
		}
	}
	if !found {
		t.Errorf("no problem names organiser.upstream.assurance.map:\n%v", err)
	}
}
