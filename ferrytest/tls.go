package ferrytest

import (
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
	"testing"
	"time"
)

// TLSFiles is a self-signed certificate for 127.0.0.1 and localhost, good
// for server and client authentication, as files and as ready tls.Configs.
type TLSFiles struct {
	CertFile, KeyFile string         // PEM files in a test temporary directory
	Pool              *x509.CertPool // trusts the certificate
	Cert              tls.Certificate
}

// TLS makes a TLSFiles valid for an hour.
func TLS(t testing.TB) TLSFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "ferry test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := TLSFiles{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), Pool: x509.NewCertPool()}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(f.CertFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if f.Cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	f.Pool.AddCert(cert)
	return f
}

// Server returns a server configuration presenting the certificate; with
// mutual, it also requires clients to present one the pool trusts.
func (f TLSFiles) Server(mutual bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{f.Cert}, MinVersion: tls.VersionTLS12}
	if mutual {
		c.ClientCAs = f.Pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c
}

// Client returns a client configuration trusting the certificate; with
// mutual, it also presents it.
func (f TLSFiles) Client(mutual bool) *tls.Config {
	c := &tls.Config{RootCAs: f.Pool, MinVersion: tls.VersionTLS12}
	if mutual {
		c.Certificates = []tls.Certificate{f.Cert}
	}
	return c
}
