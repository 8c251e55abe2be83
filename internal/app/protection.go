package app

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/protection"
	"github.com/skolbro/skolbro/internal/pseudonym"
	"github.com/skolbro/skolbro/internal/store"
)

// buildProtection makes the protection resolver from every configured
// source: the upstream attribute, the manual register, the SS 12000 API.
func buildProtection(rep *Report, cfg *config.Config, st store.Store, reg prometheus.Registerer) (*protection.Resolver, *protection.Register) {
	o := cfg.Organiser
	file := cfg.File()
	res := &protection.Resolver{}
	if m, err := protection.NewMetrics(reg); err == nil {
		res.Metrics = m
	}
	if o.Upstream.SecurityMarking != "" {
		res.Sources = append(res.Sources, protection.UpstreamAttribute{})
	}
	var register *protection.Register
	if r := o.Protection.Register; r != nil {
		key, err := pseudonym.LoadKey(cfg.Path(r.KeyFile))
		if err != nil {
			rep.errorf(file, "organiser.protection.register.key_file", "%v", err)
		} else {
			var backend protection.RegisterBackend
			if rs, ok := st.(*store.Redis); ok {
				backend = protection.NewRedisRegister(rs.Client(), rs.Prefix())
			} else {
				backend = protection.NewFileRegister(cfg.Path(r.File))
			}
			if register, err = protection.NewRegister(backend, key); err != nil {
				rep.errorf(file, "organiser.protection.register.key_file", "%v", err)
			} else {
				res.Sources = append(res.Sources, register)
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
				rep.errorf(file, "organiser.protection.ss12000.client_cert", "%v", err)
			} else {
				sc.ClientCert = &c
			}
		}
		if ss.CAFile != "" {
			b, err := os.ReadFile(cfg.Path(ss.CAFile))
			pool := x509.NewCertPool()
			if err != nil || !pool.AppendCertsFromPEM(b) {
				rep.errorf(file, "organiser.protection.ss12000.ca_file", "no PEM certificates could be read")
			} else {
				sc.RootCAs = pool
			}
		}
		src, err := protection.NewSS12000(sc)
		if err != nil {
			rep.errorf(file, "organiser.protection.ss12000", "%v", err)
		} else {
			res.Sources = append(res.Sources, src)
		}
	}
	return res, register
}
