package samlsp

import (
	"context"
	"testing"

	"github.com/beevik/etree"

	"github.com/skolbro/skolbro/internal/testidp"
)

// BenchmarkHostileAttributes times the refusal of a maximal message whose
// one element carries tens of thousands of attributes.
func BenchmarkHostileAttributes(b *testing.B) {
	f := newFixture(b)
	resp := encode(manyAttributes())
	for b.Loop() {
		if _, _, err := f.sp.HandleResponse(context.Background(), resp, browserA); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkBadSignature times the refusal of a well-formed response whose
// assertion was changed after signing: the full path up to the signature.
func BenchmarkBadSignature(b *testing.B) {
	f := newFixture(b)
	resp := f.respond(f.login(browserA), testidp.AfterSigning(func(doc *etree.Document) {
		assertionOf(doc).FindElement(pNameID).SetText("x")
	}))
	for b.Loop() {
		if _, _, err := f.sp.HandleResponse(context.Background(), resp, browserA); err == nil {
			b.Fatal("accepted")
		}
	}
}
