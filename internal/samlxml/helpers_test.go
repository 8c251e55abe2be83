package samlxml

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"testing"
)

func deflate(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}
