// Package ss12000test is a fake SS 12000 API for tests: an httptest TLS
// server answering POST /persons/lookup ({"civicNos":[...]}) and
// GET /persons?civicNo=... with SS 12000's list of persons,
// {"data":[Person]}, from a table the test fills. It can require a bearer
// token and a client certificate, answer slowly, fail with a status, or
// send a fixed body.
package ss12000test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Server is a fake SS 12000 API. Its methods are safe for concurrent use.
type Server struct {
	srv        *httptest.Server
	token      string
	clientCert *tls.Certificate
	closed     chan struct{}

	mu       sync.Mutex
	persons  map[string]*string // civic number → securityMarking (nil: none sent)
	delay    time.Duration
	failing  int
	body     string
	requests int
	last     string
}

// Option changes how New builds the server.
type Option func(*options)

type options struct{ clientCert bool }

// WithClientCert makes the server require a client certificate issued by
// a CA it makes for the purpose; ClientCertificate returns one.
func WithClientCert() Option { return func(o *options) { o.clientCert = true } }

// New starts a server, closed when t ends. With a non-empty token every
// request must carry "Authorization: Bearer <token>" or is answered 401.
func New(t testing.TB, token string, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{token: token, closed: make(chan struct{}), persons: map[string]*string{}}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// Refused handshakes are what some tests are about; not worth a line.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if o.clientCert {
		pool, cert, err := clientCA()
		if err != nil {
			t.Fatalf("ss12000test: client CA: %v", err)
		}
		s.clientCert = cert
		s.srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	}
	s.srv.StartTLS()
	t.Cleanup(func() {
		close(s.closed)
		s.srv.Close()
	})
	return s
}

// URL is the API's base URL (https).
func (s *Server) URL() string { return s.srv.URL }

// CACertPEM returns the server's certificate in PEM form, for a
// configuration's ca_file.
func (s *Server) CACertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// CertPool holds the certificate that verifies the server.
func (s *Server) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.srv.Certificate())
	return pool
}

// ClientCertificate returns a client certificate the server accepts, or
// nil without WithClientCert.
func (s *Server) ClientCertificate() *tls.Certificate { return s.clientCert }

// ClientTLSConfig is a client configuration that trusts the server and,
// with WithClientCert, presents the client certificate.
func (s *Server) ClientTLSConfig() *tls.Config {
	c := &tls.Config{RootCAs: s.CertPool(), MinVersion: tls.VersionTLS12}
	if s.clientCert != nil {
		c.Certificates = []tls.Certificate{*s.clientCert}
	}
	return c
}

// Set records a person with the 12-digit civic number pnr and the
// securityMarking marking ("Ingen", "Sekretessmarkering", "Skyddad
// folkbokföring", or anything else to test refusal). An empty marking
// leaves securityMarking out of the person.
func (s *Server) Set(pnr, marking string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if marking == "" {
		s.persons[pnr] = nil
		return
	}
	s.persons[pnr] = &marking
}

// Remove forgets the person with civic number pnr.
func (s *Server) Remove(pnr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.persons, pnr)
}

// SetDelay makes every answer wait d (or until the client gives up).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetFailing makes every request fail with status; 0 answers normally.
func (s *Server) SetFailing(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = status
}

// SetBody makes every successful answer body (status 200), whatever was
// asked; "" answers normally.
func (s *Server) SetBody(body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = body
}

// Requests counts the requests received, refused ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// LastRequest is the method and path (never the query) of the last
// request, e.g. "POST /persons/lookup".
func (s *Server) LastRequest() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.last = r.Method + " " + r.URL.Path
	delay, failing, body, token := s.delay, s.failing, s.body, s.token
	s.mu.Unlock()

	if delay > 0 {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		}
	}
	if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
		writeError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	if failing != 0 {
		writeError(w, failing, "failing")
		return
	}
	var civicNos []string
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/persons/lookup":
		var req struct {
			CivicNos []string `json:"civicNos"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad request")
			return
		}
		civicNos = req.CivicNos
	case r.Method == http.MethodGet && r.URL.Path == "/persons":
		civicNos = r.URL.Query()["civicNo"]
	default:
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if body != "" {
		_, _ = io.WriteString(w, body)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"data": s.lookup(civicNos)})
}

type civicNo struct {
	Value string `json:"value"`
}

type person struct {
	ID                      string   `json:"id"`
	GivenName               string   `json:"givenName"`
	FamilyName              string   `json:"familyName"`
	EduPersonPrincipalNames []string `json:"eduPersonPrincipalNames"`
	CivicNo                 civicNo  `json:"civicNo"`
	SecurityMarking         *string  `json:"securityMarking,omitempty"`
}

func (s *Server) lookup(civicNos []string) []person {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []person{}
	for i, c := range civicNos {
		marking, ok := s.persons[c]
		if !ok {
			continue
		}
		out = append(out, person{
			ID:                      fmt.Sprintf("00000000-0000-4000-8000-%012x", i+1),
			GivenName:               "Test",
			FamilyName:              "Testsson",
			EduPersonPrincipalNames: []string{"test@skola.example.se"},
			CivicNo:                 civicNo{Value: c},
			SecurityMarking:         marking,
		})
	}
	return out
}

func writeError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code})
}

// clientCA makes a CA and a client certificate it issued.
func clientCA() (*x509.CertPool, *tls.Certificate, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ss12000test client CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "skolbro test client"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
