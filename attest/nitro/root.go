package nitro

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// awsRootG1PEM is the AWS Nitro Enclaves Root G1 certificate, published by
// AWS at https://aws-nitro-enclaves.amazonaws.com/AWS_NitroEnclaves_Root-G1.zip
// and valid from 2019-10-28 to 2049-10-28. Its SHA-256 fingerprint,
// documented by AWS and checked by a test, is
// 641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B.
// It is public data: embedding it pins the one root every genuine document
// chains to.
const awsRootG1PEM = `-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----
`

// AWSRoot returns a freshly parsed copy of the embedded AWS Nitro Enclaves
// Root G1 certificate. A fresh copy per call keeps the package free of
// mutable shared state.
func AWSRoot() *x509.Certificate {
	block, _ := pem.Decode([]byte(awsRootG1PEM))
	if block == nil {
		panic("nitro: embedded AWS root is not PEM")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		panic(fmt.Sprintf("nitro: embedded AWS root: %v", err))
	}
	return c
}
