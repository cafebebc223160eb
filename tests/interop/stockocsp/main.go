// Command stockocsp judges a certificate chain the way stock `singularity verify --certificate
// ... --ocsp-verify` (SingularityCE 4.x, Apptainer) does, written from the rules stated in
// issue 17 with Go's crypto/x509 and golang.org/x/crypto/ocsp (Debian's
// golang-golang-x-crypto-dev):
//
//  1. the chain verifies with crypto/x509 Verify at the verifier's clock, code-signing EKU;
//  2. every certificate of the chain that is not self-signed names an OCSP responder (AIA);
//  3. a request with a SHA-1 CertID is POSTed to the first OCSP URL;
//  4. the response parses and its signature checks against the issuer (ParseResponseForCert);
//     an embedded responder certificate is accepted only if its SubjectKeyId is the checked
//     certificate's AuthorityKeyId, or if the checked certificate has the OCSPSigning EKU and
//     shares the responder's AuthorityKeyId: a delegated responder is rejected;
//  5. thisUpdate is not in the future and nextUpdate not in the past; the status is good.
//
// Usage: stockocsp -leaf F -intermediates F -roots F [-at RFC3339] [-responses DIR] [-via H:P]
//
// -at sets the verifier's clock (default now). -responses DIR reads DIR/<serial hex>.der
// instead of asking the responder (pre-signed answers at a simulated time). -via H:P sends the
// POST to that address instead of the URL's host (a test server on a free port), keeping the
// URL's path and Host header. Output: one line per certificate; exit 0 when everything passes,
// 1 when a check fails (the last line says which and why), 2 on bad usage.
package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ocsp"
)

var (
	leafFile      = flag.String("leaf", "", "leaf certificate (PEM)")
	interFile     = flag.String("intermediates", "", "intermediate certificates (PEM)")
	rootFile      = flag.String("roots", "", "trusted root certificates (PEM)")
	atText        = flag.String("at", "", "the verifier's clock, RFC 3339 (default now)")
	responsesDir  = flag.String("responses", "", "read DIR/<serial hex>.der instead of POSTing")
	via           = flag.String("via", "", "connect to HOST:PORT instead of the URL's host")
	maxResponse   = int64(1 << 20)
	requestTimout = 10 * time.Second
)

func readCerts(path string) ([]*x509.Certificate, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, cert)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no certificate", path)
	}
	return out, nil
}

// fetch returns the DER response for cert: from the responses directory or by an HTTP POST.
func fetch(cert *x509.Certificate, request []byte) ([]byte, error) {
	if *responsesDir != "" {
		return os.ReadFile(filepath.Join(*responsesDir, cert.SerialNumber.Text(16)+".der"))
	}
	target, err := url.Parse(cert.OCSPServer[0])
	if err != nil {
		return nil, fmt.Errorf("cannot parse OCSP URL: %w", err)
	}
	host := target.Host
	if *via != "" {
		target.Host = *via
	}
	post, err := http.NewRequest(http.MethodPost, target.String(), bytes.NewReader(request))
	if err != nil {
		return nil, err
	}
	post.Host = host
	post.Header.Set("Content-Type", "application/ocsp-request")
	post.Header.Set("Accept", "application/ocsp-response")
	client := &http.Client{Timeout: requestTimout}
	answer, err := client.Do(post)
	if err != nil {
		return nil, fmt.Errorf("OCSP request failed: %w", err)
	}
	defer answer.Body.Close()
	return io.ReadAll(io.LimitReader(answer.Body, maxResponse))
}

func hasOCSPSigning(cert *x509.Certificate) bool {
	for _, usage := range cert.ExtKeyUsage {
		if usage == x509.ExtKeyUsageOCSPSigning {
			return true
		}
	}
	return false
}

// check applies rules 2 to 5 to one certificate that is not self-signed; nil when it passes.
func check(cert *x509.Certificate, bySKI map[string]*x509.Certificate, now time.Time) error {
	issuer, found := bySKI[string(cert.AuthorityKeyId)]
	if !found {
		return fmt.Errorf("issuer %s is not in the chain", cert.Issuer)
	}
	if !issuer.IsCA {
		return fmt.Errorf("issuer %s is not a CA", issuer.Subject)
	}
	if len(cert.OCSPServer) == 0 {
		return fmt.Errorf("certificate does not support OCSP")
	}
	request, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return fmt.Errorf("cannot build the OCSP request: %w", err)
	}
	der, err := fetch(cert, request)
	if err != nil {
		return err
	}
	response, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		return fmt.Errorf("OCSP response err: %w", err)
	}
	if response.Certificate != nil {
		issuerAnswered := bytes.Equal(response.Certificate.SubjectKeyId, cert.AuthorityKeyId)
		sibling := hasOCSPSigning(cert) &&
			bytes.Equal(response.Certificate.AuthorityKeyId, cert.AuthorityKeyId)
		if !issuerAnswered && !sibling {
			return fmt.Errorf("ocsp response is rejected")
		}
	}
	if response.ThisUpdate.After(now) {
		return fmt.Errorf("unreliable OCSP response: thisUpdate %s is after %s",
			response.ThisUpdate.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if !response.NextUpdate.IsZero() && response.NextUpdate.Before(now) {
		return fmt.Errorf("unreliable OCSP response: nextUpdate %s is before %s",
			response.NextUpdate.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	switch response.Status {
	case ocsp.Good:
		return nil
	case ocsp.Revoked:
		return fmt.Errorf("certificate revoked at %s, reason %d",
			response.RevokedAt.UTC().Format(time.RFC3339), response.RevocationReason)
	default:
		return fmt.Errorf("certificate status is unknown")
	}
}

func run() (int, error) {
	flag.Parse()
	if *leafFile == "" || *rootFile == "" {
		return 2, fmt.Errorf("-leaf and -roots are required")
	}
	now := time.Now()
	if *atText != "" {
		parsed, err := time.Parse(time.RFC3339, *atText)
		if err != nil {
			return 2, fmt.Errorf("-at: %w", err)
		}
		now = parsed
	}
	leaves, err := readCerts(*leafFile)
	if err != nil {
		return 2, err
	}
	intermediates, err := readCerts(*interFile)
	if err != nil {
		return 2, err
	}
	roots, err := readCerts(*rootFile)
	if err != nil {
		return 2, err
	}
	rootPool, interPool := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range roots {
		rootPool.AddCert(c)
	}
	for _, c := range intermediates {
		interPool.AddCert(c)
	}
	chains, err := leaves[0].Verify(x509.VerifyOptions{
		Roots: rootPool, Intermediates: interPool, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	})
	if err != nil {
		return 1, fmt.Errorf("x509 verify: %w", err)
	}
	chain := chains[0]
	fmt.Printf("x509 ok: %d certificates, code signing, at %s\n", len(chain),
		now.UTC().Format(time.RFC3339))
	bySKI := map[string]*x509.Certificate{}
	for _, c := range chain {
		bySKI[string(c.SubjectKeyId)] = c
	}
	for _, c := range chain {
		if len(c.AuthorityKeyId) == 0 || bytes.Equal(c.SubjectKeyId, c.AuthorityKeyId) {
			fmt.Printf("ocsp skipped (self-signed): %s\n", c.Subject.CommonName)
			continue
		}
		if err := check(c, bySKI, now); err != nil {
			return 1, fmt.Errorf("ocsp %s: %w", c.Subject.CommonName, err)
		}
		fmt.Printf("ocsp ok: %s\n", c.Subject.CommonName)
	}
	return 0, nil
}

func main() {
	code, err := run()
	if err != nil {
		fmt.Printf("FAIL %v\n", err)
	}
	os.Exit(code)
}
