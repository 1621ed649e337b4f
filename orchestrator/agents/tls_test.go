package agents

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI makes a CA and a certificate it signs for 127.0.0.1, and writes
// the CA as PEM for LoadCA.
func testPKI(t *testing.T) (caFile string, cert tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loadramp test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "agent"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	caFile, cert := testPKI(t)
	e := &fakeEngine{seed: 5, scaleUS: 300}
	srv := ok(newTestServer(agentConfig("tls-agent", "tok", e)))(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, &tls.Config{Certificates: []tls.Certificate{cert}}) }()
	defer func() { cancel(); <-done }()
	url := "https://" + ln.Addr().String()

	pool, err := LoadCA(caFile)
	if err != nil {
		t.Fatal(err)
	}
	o := opts("tok")
	o.RootCAs = pool
	f := ok(DialFleet(context.Background(), []Endpoint{{Name: "t1", URL: url}}, o))(t)
	res, err := f.RunStep(context.Background(), StepSpec{ID: "tls1", Workload: httpWorkload(),
		Params: map[string]float64{"rate": 10, "connections": 1}, Shares: Shares(false), Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Merged.Requests != 10 {
		t.Errorf("requests %d over TLS, want 10", res.Merged.Requests)
	}

	// Without the CA, the coordinator does not trust the agent.
	_, err = Dial(context.Background(), Endpoint{Name: "t1", URL: url}, opts("tok"))
	if err == nil || !strings.Contains(err.Error(), "agent t1") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted agent: %v, want a certificate error naming the agent", err)
	}
	// Plain HTTP/2 to a TLS agent fails too.
	_, err = Dial(context.Background(), Endpoint{Name: "t1", URL: "http://" + ln.Addr().String()}, opts("tok"))
	if err == nil {
		t.Fatal("h2c to a TLS agent: no error")
	}
	if _, err := LoadCA(filepath.Join(t.TempDir(), "none.pem")); err == nil {
		t.Error("LoadCA of a missing file: no error")
	}
}
