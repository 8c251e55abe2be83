package fedmeta

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"
)

// parsePin reads "sha256/<base64 of the SHA-256 of a SubjectPublicKeyInfo>".
func parsePin(p string) ([]byte, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(p), "sha256/")
	if !ok {
		return nil, errors.New(`must start with "sha256/"`)
	}
	sum, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sum) != sha256.Size {
		return nil, errors.New("must be the base64 of a SHA-256 hash")
	}
	return sum, nil
}

// Pin returns the pin of a DER SubjectPublicKeyInfo, as TLSPins takes it.
func Pin(spki []byte) string {
	sum := sha256.Sum256(spki)
	return "sha256/" + base64.StdEncoding.EncodeToString(sum[:])
}

// pinnedTransport is an https transport that accepts a server only when
// the key of the certificate it presents (the leaf) is one of pins. The
// usual CA checks are replaced by the pin, which is stricter: a key named
// in the configuration, not any key some CA certified for the host; a
// self-signed ADFS certificate can be pinned too. Only the leaf is
// compared, so a chain that merely includes a pinned CA certificate does
// not pass.
func pinnedTransport(pins []string) *http.Transport {
	var sums [][]byte
	for _, p := range pins {
		if s, err := parsePin(p); err == nil {
			sums = append(sums, s)
		}
	}
	// A proxy (HTTPS_PROXY) only relays the TLS connection, whose key is
	// still checked end to end.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSHandshakeTimeout = 10 * time.Second
	t.TLSClientConfig = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection's pin check
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("fedmeta: no server certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			for _, s := range sums {
				if subtle.ConstantTimeCompare(got[:], s) == 1 {
					return nil
				}
			}
			return errors.New("fedmeta: the server's key is not pinned")
		},
	}
	return t
}
