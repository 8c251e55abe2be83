package ss12000test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const pnr = "200501022388"

type answer struct {
	Data []struct {
		CivicNo struct {
			Value string `json:"value"`
		} `json:"civicNo"`
		SecurityMarking *string `json:"securityMarking"`
	} `json:"data"`
}

// call sends one request and returns the status and the decoded answer.
func call(t *testing.T, s *Server, c *http.Client, method, path, body, token string) (int, answer) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var a answer
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatalf("decode: %v", err)
		}
	}
	return resp.StatusCode, a
}

func client(s *Server) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: s.ClientTLSConfig()}, Timeout: 10 * time.Second}
}

func TestServer(t *testing.T) {
	t.Parallel()
	s := New(t, "tok")
	s.Set(pnr, "Sekretessmarkering")
	s.Set("201203154511", "")
	c := client(s)

	tests := []struct {
		name, method, path, body, token string
		wantStatus                      int
		wantCivic                       []string
		wantMarking                     []string // "-" for none sent
		wantLast                        string
	}{
		{"lookup", "POST", "/persons/lookup", `{"civicNos":["` + pnr + `"]}`, "tok", 200, []string{pnr}, []string{"Sekretessmarkering"}, "POST /persons/lookup"},
		{"query", "GET", "/persons?civicNo=" + pnr, "", "tok", 200, []string{pnr}, []string{"Sekretessmarkering"}, "GET /persons"},
		{"no marking", "GET", "/persons?civicNo=201203154511", "", "tok", 200, []string{"201203154511"}, []string{"-"}, "GET /persons"},
		{"unknown person", "POST", "/persons/lookup", `{"civicNos":["199807217642"]}`, "tok", 200, nil, nil, "POST /persons/lookup"},
		{"no token", "POST", "/persons/lookup", `{"civicNos":["` + pnr + `"]}`, "", 401, nil, nil, "POST /persons/lookup"},
		{"wrong token", "POST", "/persons/lookup", `{"civicNos":["` + pnr + `"]}`, "other", 401, nil, nil, "POST /persons/lookup"},
		{"bad body", "POST", "/persons/lookup", `{`, "tok", 400, nil, nil, "POST /persons/lookup"},
		{"other path", "GET", "/groups", "", "tok", 404, nil, nil, "GET /groups"},
	}
	for i, tc := range tests {
		status, a := call(t, s, c, tc.method, tc.path, tc.body, tc.token)
		if status != tc.wantStatus {
			t.Errorf("%s: status %d, want %d", tc.name, status, tc.wantStatus)
		}
		var civic, marking []string
		for _, p := range a.Data {
			civic = append(civic, p.CivicNo.Value)
			m := "-"
			if p.SecurityMarking != nil {
				m = *p.SecurityMarking
			}
			marking = append(marking, m)
		}
		if diff := cmp.Diff(tc.wantCivic, civic); diff != "" {
			t.Errorf("%s: civic numbers (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.wantMarking, marking); diff != "" {
			t.Errorf("%s: markings (-want +got):\n%s", tc.name, diff)
		}
		if got := s.LastRequest(); got != tc.wantLast {
			t.Errorf("%s: LastRequest = %q, want %q", tc.name, got, tc.wantLast)
		}
		if got := s.Requests(); got != i+1 {
			t.Errorf("%s: Requests = %d, want %d", tc.name, got, i+1)
		}
	}

	s.Remove(pnr)
	if _, a := call(t, s, c, "GET", "/persons?civicNo="+pnr, "", "tok"); len(a.Data) != 0 {
		t.Errorf("removed person still answered: %v", a)
	}
	s.SetFailing(503)
	if status, _ := call(t, s, c, "GET", "/persons?civicNo="+pnr, "", "tok"); status != 503 {
		t.Errorf("failing: status %d, want 503", status)
	}
	s.SetFailing(0)
	s.SetBody(`{"data":[{"civicNo":{"value":"x"}}]}`)
	if _, a := call(t, s, c, "GET", "/persons?civicNo="+pnr, "", "tok"); len(a.Data) != 1 || a.Data[0].CivicNo.Value != "x" {
		t.Errorf("fixed body: got %v", a)
	}
}

func TestServerClientCert(t *testing.T) {
	t.Parallel()
	s := New(t, "", WithClientCert())
	s.Set(pnr, "Ingen")
	if s.ClientCertificate() == nil {
		t.Fatal("no client certificate")
	}
	if status, a := call(t, s, client(s), "GET", "/persons?civicNo="+pnr, "", ""); status != 200 || len(a.Data) != 1 {
		t.Errorf("with the certificate: status %d, %d persons", status, len(a.Data))
	}
	bare := &http.Client{Transport: &http.Transport{TLSClientConfig: s.ClientTLSConfig().Clone()}}
	bare.Transport.(*http.Transport).TLSClientConfig.Certificates = nil
	if _, err := bare.Get(s.URL() + "/persons?civicNo=" + pnr); err == nil {
		t.Error("a client without a certificate was served")
	}
	if New(t, "").ClientCertificate() != nil {
		t.Error("a server without WithClientCert has a client certificate")
	}
}

func TestServerDelay(t *testing.T) {
	t.Parallel()
	s := New(t, "")
	s.SetDelay(time.Minute)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: s.ClientTLSConfig()}, Timeout: 50 * time.Millisecond}
	if _, err := c.Get(s.URL() + "/persons?civicNo=" + pnr); err == nil {
		t.Error("a delayed answer came before the client's timeout")
	}
}
