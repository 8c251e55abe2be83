package config

import (
	"strings"
	"testing"
)

// A fetched upstream metadata source must be trusted somehow, over https,
// and only one metadata source may be set; an encryption requirement needs
// the key. Each problem names the key.
func TestUpstreamMetadataURLProblemsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, upstream, key, says string
	}{
		{"no trust", "    metadata_url: https://adfs.example.se/md.xml\n", "organiser.upstream.metadata_url", "metadata_tls_pins"},
		{"plain http", "    metadata_url: http://adfs.example.se/md.xml\n    metadata_tls_pins: [\"sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"]\n", "organiser.upstream.metadata_url", "https"},
		{"bad pin", "    metadata_url: https://adfs.example.se/md.xml\n    metadata_tls_pins: [\"sha1/abc\"]\n", "organiser.upstream.metadata_tls_pins[0]", "sha256/"},
		{"two sources", "    metadata: upstream.xml\n    metadata_url: https://adfs.example.se/md.xml\n    metadata_tls_pins: [\"sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"]\n", "organiser.upstream.metadata", "one of"},
		{"federation without sources", "    entity_id: https://adfs.example.se/adfs/services/trust\n    metadata_from_federation: true\n", "organiser.upstream.metadata_from_federation", "federation"},
		{"encryption without a key", "    metadata: upstream.xml\n    require_encryption: true\n", "organiser.upstream.require_encryption", "keys.encryption"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("skolbro.yaml", []byte(`external_url: https://bro.example.se
organiser:
  id: kommun
  display_name: Kommun
  scope: kommun.example.se
  upstream:
    id: adfs
    stable_id: NameID
`+tc.upstream))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			found := false
			for _, e := range splitErrors(err) {
				if p, ok := e.(Problem); ok && p.Key == tc.key && p.File == "skolbro.yaml" && strings.Contains(p.Message, tc.says) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem at %s saying %q in:\n%v", tc.key, tc.says, err)
			}
		})
	}
}
