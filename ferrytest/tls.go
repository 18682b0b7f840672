package ferrytest

import (
	"crypto"
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

// TLSFiles is a certificate for 127.0.0.1 and localhost, good for server
// and client authentication, as files and as ready tls.Configs: self-signed
// (TLS) or signed by another (Sign).
type TLSFiles struct {
	CertFile, KeyFile string         // PEM files in a test temporary directory
	Pool              *x509.CertPool // trusts the certificate (Sign: the one that signed it)
	Cert              tls.Certificate
}

// TLS makes a TLSFiles valid for an hour. Its certificate is also a CA:
// Sign issues certificates it signed.
func TLS(t testing.TB) TLSFiles {
	t.Helper()
	return issue(t, "ferry test", nil, nil)
}

// Sign makes a certificate signed by f's (valid for an hour, for
// 127.0.0.1 and localhost, server and client authentication) whose Pool
// trusts f's certificate: a client certificate that a server trusting f
// accepts, where one from another TLS call is refused.
func (f TLSFiles) Sign(t testing.TB) TLSFiles {
	t.Helper()
	return issue(t, "ferry test leaf", f.Cert.Leaf, f.Cert.PrivateKey)
}

// issue makes a certificate signed by parent's key, or self-signed (and a
// CA) when parent is nil.
func issue(t testing.TB, name string, parent *x509.Certificate, parentKey crypto.PrivateKey) TLSFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},

		BasicConstraintsValid: true,
	}
	if parent == nil {
		tmpl.IsCA = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
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
	if f.Cert.Leaf, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	if tmpl.IsCA {
		f.Pool.AddCert(f.Cert.Leaf)
	} else {
		f.Pool.AddCert(parent)
	}
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
