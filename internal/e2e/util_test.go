package e2e

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skolbro/skolbro/internal/keys"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyBody(w io.Writer, resp *http.Response) (int64, error) { return io.Copy(w, resp.Body) }

func formValue(k, v string) url.Values { return url.Values{k: {v}} }

func writePairFiles(dir, name string, p *keys.Pair) error {
	kp, err := p.KeyPEM()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), p.CertPEM(), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".key"), kp, 0o600)
}

func certB64(p *keys.Pair) string { return base64.StdEncoding.EncodeToString(p.Cert.Raw)[:60] }

func certB64FromFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := keys.ParseCertificatePEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(base64.StdEncoding.EncodeToString(c.Raw)[:60])
}

func certB64Full(p *keys.Pair) string { return base64.StdEncoding.EncodeToString(p.Cert.Raw) }
