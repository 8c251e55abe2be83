package fedmeta

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/skolbro/skolbro/internal/samlxml"
	"github.com/skolbro/skolbro/internal/xmlsig"
)

// Sign returns the bridge's own metadata, entity (an EntityDescriptor or
// EntitiesDescriptor), as a signed XML document: with an ID (derived from
// the entityID and validUntil when entity has none), validUntil,
// cacheDuration (as xs:duration, left out when zero) and an enveloped
// signature as its first child. entity itself is not changed; a signature
// it already carries is replaced.
func Sign(entity *etree.Element, signer *xmlsig.Signer, validUntil time.Time, cacheDuration time.Duration) ([]byte, error) {
	if signer == nil {
		return nil, errors.New("fedmeta: sign: no signer")
	}
	if !isMetadataRoot(entity) {
		return nil, errors.New("fedmeta: sign: not an EntityDescriptor or EntitiesDescriptor")
	}
	if validUntil.IsZero() {
		return nil, errors.New("fedmeta: sign: validUntil is required")
	}
	if cacheDuration < 0 {
		return nil, errors.New("fedmeta: sign: negative cacheDuration")
	}
	el := detached(entity)
	for _, s := range samlxml.Children(el, samlxml.NSDSig, "Signature") {
		el.RemoveChild(s)
	}
	if el.SelectAttrValue("ID", "") == "" {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d", el.SelectAttrValue("entityID", el.SelectAttrValue("Name", "")), validUntil.Unix()))
		// An xs:ID must not start with a digit.
		el.CreateAttr("ID", "_"+hex.EncodeToString(sum[:16]))
	}
	el.CreateAttr("validUntil", validUntil.UTC().Format("2006-01-02T15:04:05Z"))
	el.RemoveAttr("cacheDuration")
	if cacheDuration > 0 {
		d, err := saml.Duration(cacheDuration).MarshalText()
		if err != nil {
			return nil, fmt.Errorf("fedmeta: sign: cacheDuration: %w", err)
		}
		el.CreateAttr("cacheDuration", string(d))
	}
	signed, err := signer.SignEnveloped(el)
	if err != nil {
		return nil, fmt.Errorf("fedmeta: sign: %w", err)
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	doc.SetRoot(signed)
	out, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("fedmeta: sign: %w", err)
	}
	return out, nil
}

// Verify checks that b is metadata whose root carries a valid enveloped
// signature by one of certs (SHA-1 refused; certificates inside b are not
// trusted; the certificate must be valid now). It checks neither validUntil
// nor the contents; Source.Load does that for aggregates.
func Verify(b []byte, certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return fmt.Errorf("fedmeta: verify: %w: no trusted certificate", ErrBadSignature)
	}
	if int64(len(b)) > DefaultMaxBytes {
		return fmt.Errorf("fedmeta: verify: %w", ErrTooLarge)
	}
	if _, err := verifyDocument(b, certs, time.Now()); err != nil {
		return fmt.Errorf("fedmeta: verify: %w", err)
	}
	return nil
}
