package remoting

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"slices"
)

// Extension fields of RocketMQ's remoting ACL signature (ACL 1.0, also accepted by 2.0).
const (
	ExtAccessKey     = "AccessKey"
	ExtSignature     = "Signature"
	ExtSecurityToken = "SecurityToken"
)

// Signature errors.
var (
	ErrNoSignature  = errors.New("remoting: request carries no AccessKey/Signature")
	ErrBadSignature = errors.New("check signature failed.")
)

// Sign adds AccessKey and Signature to a request as rocketmq-client-go v2 does:
// Signature = Base64(HMAC-SHA1(secretKey, values of all ext fields sorted by key, then the
// body)). The ext fields include AccessKey and exclude Signature.
func Sign(c *Command, accessKey, secretKey string) {
	c.SetExt(ExtAccessKey, accessKey)
	delete(c.ExtFields, ExtSignature)
	c.ExtFields[ExtSignature] = signature(c, secretKey, "")
}

// VerifySignature checks a signed request against secretKey in constant time, as the
// RocketMQ server does (all ext fields but Signature, sorted by key, then the body). A
// request signed by go2 with a SecurityToken (which go2 leaves out of the content) is
// accepted too.
func VerifySignature(c *Command, secretKey string) error {
	sig, ok := c.ExtFields[ExtSignature]
	if !ok || c.ExtFields[ExtAccessKey] == "" {
		return ErrNoSignature
	}
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return ErrBadSignature
	}
	want, _ := base64.StdEncoding.DecodeString(signature(c, secretKey, ""))
	if hmac.Equal(got, want) {
		return nil
	}
	if _, has := c.ExtFields[ExtSecurityToken]; has {
		alt, _ := base64.StdEncoding.DecodeString(signature(c, secretKey, ExtSecurityToken))
		if hmac.Equal(got, alt) {
			return nil
		}
	}
	return ErrBadSignature
}

// signature computes the signature over c's ext fields except Signature and skip.
func signature(c *Command, secretKey, skip string) string {
	keys := make([]string, 0, len(c.ExtFields))
	for k := range c.ExtFields {
		if k != ExtSignature && k != skip {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	mac := hmac.New(sha1.New, []byte(secretKey))
	for _, k := range keys {
		mac.Write([]byte(c.ExtFields[k]))
	}
	mac.Write(c.Body)
	for _, p := range c.BodyParts {
		mac.Write(p)
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
