package samlsp

import (
	"os"
	"testing"

	"github.com/beevik/etree"
	"github.com/skolbro/skolbro/internal/testidp"
)

func TestDump(t *testing.T) {
	if os.Getenv("DUMP") == "" {
		t.Skip()
	}
	f := newFixture(t)
	for _, s := range []string{"adfs_default_namespace", "shibboleth_saml2_prefix"} {
		t.Log(decode(t, f.respond(f.login(browserA), testidp.BeforeSigning(restyle(s)), testidp.SignResponse())))
	}
	t.Log(decode(t, f.respond(f.login(browserA), testidp.AfterSigning(func(doc *etree.Document) { assertionOf(doc).RemoveAttr("xmlns:saml") }))))
}
