package wiring

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

	"github.com/rs/zerolog"

	"github.com/loadramp/loadramp/orchestrator/agent"
)

// A TLS agent is trusted through the CA the plan names (agents.ca), or the
// configuration's (agent_ca); without either, the refusal names the agent.
func TestAgentsTLSFromPlanOrConfig(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "agent"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, &key.PublicKey, caKey)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	engines, observer, auditor := AgentRoles("tls-agent", "", zerolog.Nop())
	srv, err := agent.New(agent.Config{Name: "tls-agent", Version: testVersion, Token: "tok", Engines: engines, Observer: observer, Auditor: auditor})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, ln, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12})
	}()
	defer func() { cancel(); <-done }()
	url := "https://" + ln.Addr().String()

	workload := "  http: { method: GET, url: '{{ .fleets.target.endpoint }}/' }"
	params := "  - { name: rate, start: 10, max: 10 }"
	p, render := agentsPlan(t, "http://127.0.0.1:1", []string{url}, "", workload, params)
	if _, err := newAgentEngine(agentsConfig("tok"), p, render, zerolog.Nop()); err == nil ||
		!strings.Contains(err.Error(), "agent g1 ("+url+")") || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("no CA: %v, want a refusal naming g1 and its certificate", err)
	}
	cfg := agentsConfig("tok")
	cfg.AgentCA = caFile
	if _, err := newAgentEngine(cfg, p, render, zerolog.Nop()); err != nil {
		t.Errorf("the configuration's CA: %v", err)
	}
	p.Fleets["generators"].Agents.CA = caFile
	if _, err := newAgentEngine(agentsConfig("tok"), p, render, zerolog.Nop()); err != nil {
		t.Errorf("the plan's CA: %v", err)
	}
	p.Fleets["generators"].Agents.CA = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := newAgentEngine(agentsConfig("tok"), p, render, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "fleets.generators.agents.ca") {
		t.Errorf("a missing CA file: %v, want its plan path", err)
	}
}
