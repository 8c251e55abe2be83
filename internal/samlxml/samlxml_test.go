package samlxml

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestParseNamespaceBounds(t *testing.T) {
	values := func(n int, distinct bool) string {
		var sb strings.Builder
		sb.WriteString(`<r xmlns="urn:x">`)
		for i := 0; i < n; i++ {
			uri := "http://www.w3.org/2001/XMLSchema"
			if distinct {
				uri = fmt.Sprintf("urn:ns:%d", i)
			}
			fmt.Fprintf(&sb, `<v xmlns:xs=%q xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">a</v>`, uri)
		}
		sb.WriteString(`</r>`)
		return sb.String()
	}
	tests := []struct {
		name string
		doc  string
		want error
	}{
		{"the same pairs repeated on 500 values (some IdPs do this)", values(500, false), nil},
		{"100 distinct declarations", values(100, true), ErrTooManyNS},
		{"5000 declarations in all", "<r>" + strings.Repeat(`<v xmlns:a="urn:a" xmlns:b="urn:b" xmlns:c="urn:c" xmlns:d="urn:d" xmlns:e="urn:e"/>`, 1000) + "</r>", ErrTooManyNS},
		{"DOCTYPE", `<!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>`, ErrDTD},
		{"too deep", strings.Repeat("<a>", MaxDepth+1) + strings.Repeat("</a>", MaxDepth+1), ErrTooDeep},
		{"too large", "<r>" + strings.Repeat("a", MaxMessageBytes) + "</r>", ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Errorf("Parse = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTextRefusesComments(t *testing.T) {
	doc, err := Parse([]byte(`<r><a>adm<!-- -->in</a><b> plain </b></r>`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Text(doc.Root().SelectElement("a")); err == nil {
		t.Error("a comment inside a value was accepted (case 6: it would read as \"adm\")")
	}
	if got, err := Text(doc.Root().SelectElement("b")); err != nil || got != "plain" {
		t.Errorf("Text = %q, %v", got, err)
	}
}

func TestInflateBomb(t *testing.T) {
	// 10 MB of zeros deflate to a few KB; Inflate must stop at the bound.
	raw := deflate(t, make([]byte, 10<<20))
	if _, err := Inflate(raw); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Inflate of a deflate bomb = %v, want ErrTooLarge", err)
	}
}

// TestCase18_InflateReusesReadersSafely: Inflate keeps its DEFLATE
// readers for the next message; after a bomb, garbage or a truncated
// stream, the next message still inflates to exactly itself.
func TestCase18_InflateReusesReadersSafely(t *testing.T) {
	msg := func(i int) []byte {
		return []byte(strings.Repeat("<samlp:AuthnRequest ID=\"_"+strconv.Itoa(i)+"\"/>", 1+i%7))
	}
	bad := []string{
		deflate(t, make([]byte, 10<<20)), // bomb
		base64.StdEncoding.EncodeToString([]byte("not deflate at all")),
		deflate(t, msg(3))[:8], // truncated
	}
	for i := range 50 {
		if i%5 == 0 {
			if _, err := Inflate(bad[i/5%len(bad)]); err == nil {
				t.Fatalf("bad input %d inflated", i/5%len(bad))
			}
		}
		got, err := Inflate(deflate(t, msg(i)))
		if err != nil || !bytes.Equal(got, msg(i)) {
			t.Fatalf("message %d: %q, %v", i, got, err)
		}
	}
}
