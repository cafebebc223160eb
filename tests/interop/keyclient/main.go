// keyclient drives Apptainer's HKP client (github.com/apptainer/container-key-client, the
// library behind `apptainer key push/pull/search`, as packaged by Debian) against a keyserver:
//
//	keyclient pull URL FINGERPRINT OUT.asc   fetch by fingerprint, write it, describe each key
//	keyclient search URL TEXT                print the machine-readable index
//	keyclient push URL KEY.asc               POST /pks/add
//
// "pull" prints one line per key it parsed (ProtonMail go-crypto, as apptainer does):
// "key FINGERPRINT expires RFC3339|never revoked true|false". Exit 1 on any error.
package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/apptainer/container-key-client/client"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func describe(text string) {
	entities, err := openpgp.ReadArmoredKeyRing(strings.NewReader(text))
	if err != nil {
		fail("parse keyring: %v", err)
	}
	for _, e := range entities {
		expires := "never"
		if id := e.PrimaryIdentity(); id != nil && id.SelfSignature != nil &&
			id.SelfSignature.KeyLifetimeSecs != nil && *id.SelfSignature.KeyLifetimeSecs != 0 {
			at := e.PrimaryKey.CreationTime.Add(time.Duration(*id.SelfSignature.KeyLifetimeSecs) * time.Second)
			expires = at.UTC().Format(time.RFC3339)
		}
		fmt.Printf("key %X expires %s revoked %t\n", e.PrimaryKey.Fingerprint, expires, len(e.Revocations) > 0)
	}
}

func main() {
	if len(os.Args) < 4 {
		fail("usage: keyclient pull|search|push URL ARG [OUT]")
	}
	c, err := client.NewClient(client.OptBaseURL(os.Args[2]))
	if err != nil {
		fail("client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch os.Args[1] {
	case "pull":
		fpr, err := hex.DecodeString(os.Args[3])
		if err != nil || len(os.Args) < 5 {
			fail("pull needs a hex fingerprint and an output file")
		}
		text, err := c.GetKey(ctx, fpr)
		if err != nil {
			fail("get key: %v", err)
		}
		if err := os.WriteFile(os.Args[4], []byte(text), 0o644); err != nil {
			fail("write: %v", err)
		}
		describe(text)
	case "search":
		text, err := c.PKSLookup(ctx, nil, os.Args[3], client.OperationIndex, false, false,
			[]string{client.OptionMachineReadable})
		if err != nil {
			fail("search: %v", err)
		}
		fmt.Print(text)
	case "push":
		data, err := os.ReadFile(os.Args[3])
		if err != nil {
			fail("read: %v", err)
		}
		if err := c.PKSAdd(ctx, string(data)); err != nil {
			fail("add: %v", err)
		}
	default:
		fail("unknown command %q", os.Args[1])
	}
}
