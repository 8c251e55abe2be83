package app

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"time"

	"github.com/skolbro/skolbro/internal/config"
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
			if rs, ok := st.(*store.Redis); ok {
				backend = protection.NewRedisRegister(rs.Client(), rs.Prefix()+ns)
			} else {
				backend = protection.NewFileRegister(cfg.Path(r.File))
			}
			if register, err = protection.NewRegister(backend, key); err != nil {
				rep.errorf(file, o.Key("protection.register.key_file"), "%v", err)
			} else {
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
