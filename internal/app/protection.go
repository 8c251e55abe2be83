package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/skolbro/skolbro/internal/attr"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/protection"
	"github.com/skolbro/skolbro/internal/pseudonym"
	"github.com/skolbro/skolbro/internal/store"
)

// buildProtection makes the organiser's own protection sources: the
// manual register and the SS 12000 API. (The upstream attribute is each
// upstream's own, added by buildUpstream.) ns is the organiser's key
// prefix in the store, which the Redis-kept register shares.
func buildProtection(rep *Report, cfg *config.Config, o *config.Organiser, st store.Store, ns string, pm *protection.Metrics) ([]protection.Source, *protection.Register) {
	file := cfg.File()
	var sources []protection.Source
	var register *protection.Register
	if r := o.Protection.Register; r != nil {
		key, err := pseudonym.LoadKey(cfg.Path(r.KeyFile))
		if err != nil {
			rep.errorf(file, o.Key("protection.register.key_file"), "%v", err)
		} else {
			var backend protection.RegisterBackend
			if rs, ok := unwrapStore(st).(*store.Redis); ok {
				backend = protection.NewRedisRegister(rs.Client(), rs.Prefix()+ns)
			} else {
				backend = protection.NewFileRegister(cfg.Path(r.File))
			}
			if register, err = protection.NewRegister(backend, key); err != nil {
				rep.errorf(file, o.Key("protection.register.key_file"), "%v", err)
			} else {
				register.SetMetrics(pm)
				sources = append(sources, register)
			}
		}
	}
	if ss := o.Protection.SS12000; ss != nil {
		sc := protection.SS12000Config{
			BaseURL:  ss.BaseURL,
			Timeout:  time.Duration(ss.Timeout),
			CacheTTL: time.Duration(ss.CacheTTL),
		}
		if ss.TokenFile != "" {
			sc.BearerTokenFile = cfg.Path(ss.TokenFile)
		}
		if ss.ClientCert != nil {
			c, err := tls.LoadX509KeyPair(cfg.Path(ss.ClientCert.Cert), cfg.Path(ss.ClientCert.Key))
			if err != nil {
				rep.errorf(file, o.Key("protection.ss12000.client_cert"), "%v", err)
			} else {
				sc.ClientCert = &c
			}
		}
		if ss.CAFile != "" {
			b, err := os.ReadFile(cfg.Path(ss.CAFile))
			pool := x509.NewCertPool()
			if err != nil || !pool.AppendCertsFromPEM(b) {
				rep.errorf(file, o.Key("protection.ss12000.ca_file"), "no PEM certificates could be read")
			} else {
				sc.RootCAs = pool
			}
		}
		src, err := protection.NewSS12000(sc)
		if err != nil {
			rep.errorf(file, o.Key("protection.ss12000"), "%v", err)
		} else {
			sources = append(sources, src)
		}
	}
	return sources, register
}

// unwrapStore returns the store under any wrappers (serve hands Build the
// store instrumented with metrics): the register must find the Redis
// client itself, or it would fall back to a register file no
// `skolbro protect` command writes to.
func unwrapStore(st store.Store) store.Store {
	for {
		u, ok := st.(interface{ Unwrap() store.Store })
		if !ok {
			return st
		}
		st = u.Unwrap()
	}
}

// probePersonalNumber is a well-formed, fictional personal number
// (Skatteverket's test number) fed through the mapping by
// warnNoPersonalNumber. It is never logged nor stored.
const probePersonalNumber = "191212121212"

// warnNoPersonalNumber warns when a source keyed by the personal number
// (the register, SS 12000) is configured but the upstream can never give
// one: then every login fails that source and every person is masked.
//
// The rule, kept simple: when the SAML upstream's metadata lists the
// attributes it releases (md:Attribute in its IDPSSODescriptor), each is
// fed, holding a personal number, through the same mapping logins go
// through; if none comes out as the personal number, that is a warning.
// When the upstream lists none (most do not), or is OIDC, check cannot
// tell, and a note says which names are read and where misses are counted.
func warnNoPersonalNumber(rep *Report, cfg *config.Config, o *config.Organiser, u *config.Upstream, m *mapping.Config, declared []declaredAttribute, now time.Time) {
	p := o.Protection
	var sources []string
	if p.Register != nil {
		sources = append(sources, "the protection register")
	}
	if p.SS12000 != nil {
		sources = append(sources, "SS 12000")
	}
	if len(sources) == 0 || m == nil {
		return
	}
	who := strings.Join(sources, " and ") + " finds"
	if len(sources) > 1 {
		who = strings.Join(sources, " and ") + " find"
	}
	read := personalNumberNames(m)
	if len(declared) == 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s people by personal number; the upstream does not list the attributes it releases, so check cannot tell whether logins carry one. It is read from: %s. A login without one is masked and counted in skolbro_protection_source_failures_total{reason=\"no_personal_number\"}.",
			who, strings.Join(read, ", ")))
		return
	}
	for _, d := range declared {
		if yieldsPersonalNumber(m, d, now) {
			return
		}
	}
	rep.warnf(cfg.File(), u.Key("personal_number"),
		"%s people by personal number, but none of the attributes the upstream's metadata (%s) lists (%d) is read as one (the bridge reads it from: %s). Every login will lack it and every person will be masked for every vendor (fail closed). Name the upstream's attribute in %s, or map it to personalIdentityNumber in %s.",
		who, cfg.Path(u.Metadata), len(declared), strings.Join(read, ", "), u.Key("personal_number"), u.Key("attributes"))
}

// declaredAttribute is one attribute an upstream's metadata says it
// releases.
type declaredAttribute struct {
	name, friendly string
}

// yieldsPersonalNumber feeds d, holding a personal number, through the
// mapping and reports whether it comes out as the identity's number.
func yieldsPersonalNumber(m *mapping.Config, d declaredAttribute, now time.Time) bool {
	in := mapping.Input{
		Subject:       "probe",
		Attributes:    map[string][]string{d.name: {probePersonalNumber}},
		FriendlyNames: map[string]string{},
	}
	if d.friendly != "" {
		in.FriendlyNames[d.name] = d.friendly
	}
	probe := "probe"
	if m.ScopedStableID() && len(m.Scopes) > 0 {
		probe += "@" + m.Scopes[0] // a scoped stable id must carry an accepted scope
	}
	if sid := m.StableID; sid != mapping.NameID && sid != "sub" && sid != d.name && sid != d.friendly {
		in.Attributes[sid] = []string{probe}
	}
	id, _, err := mapping.MapWithWarnings(m, in, now)
	return err == nil && !id.PersonalNumber.IsZero()
}

// personalNumberNames lists the upstream names the mapping reads a
// personal number from: organiser.upstream.personal_number (or its
// default), the names organiser.upstream.attributes maps to a personal
// number attribute, and the standard personal number attributes.
func personalNumberNames(m *mapping.Config) []string {
	var out []string
	add := func(n string) {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	list := m.PersonalNumber
	if len(list) == 0 {
		list = mapping.DefaultPersonalNumber()
	}
	for _, n := range list {
		add(n)
	}
	from := make([]string, 0, len(m.Attributes))
	for n, to := range m.Attributes {
		if attr.IsPersonalNumber(to) {
			from = append(from, n)
		}
	}
	sort.Strings(from)
	for _, n := range from {
		add(n)
	}
	for _, d := range attr.All() {
		if d.Kind == attr.PersonalNumber {
			add(d.SAMLName)
			add(d.Name)
			add(d.OIDCClaim)
		}
	}
	return out
}
