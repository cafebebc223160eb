// sifcheck drives the reference SIF implementation (github.com/sylabs/sif/v2, as packaged by
// Debian) so tests can check our images against it:
//
//	sifcheck verify IMAGE KEYRING.asc [-legacy] [-group N] [-object N]   exit 0 verified, 1 not
//	sifcheck sign IMAGE SECRET.asc [-deterministic]          PGP clear-sign every group
//	sifcheck list IMAGE                                      one line per object: id group link type size
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/sylabs/sif/v2/pkg/integrity"
	"github.com/sylabs/sif/v2/pkg/sif"
)

func fail(code int, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(code)
}

func keyring(path string) openpgp.EntityList {
	f, err := os.Open(path)
	if err != nil {
		fail(2, "open keyring: %v", err)
	}
	defer f.Close()
	kr, err := openpgp.ReadArmoredKeyRing(f)
	if err != nil {
		fail(2, "read keyring: %v", err)
	}
	return kr
}

func main() {
	if len(os.Args) < 3 {
		fail(2, "usage: sifcheck verify|sign|list IMAGE [KEY] [flags]")
	}
	cmd, image := os.Args[1], os.Args[2]
	switch cmd {
	case "verify":
		fs := flag.NewFlagSet("verify", flag.ExitOnError)
		legacy := fs.Bool("legacy", false, "verify legacy signatures")
		group := fs.Uint("group", 0, "verify only this group")
		object := fs.Uint("object", 0, "verify only this object (as the CLI's --legacy-insecure does for the primary partition)")
		fs.Parse(os.Args[4:])
		f, err := sif.LoadContainerFromPath(image, sif.OptLoadWithFlag(os.O_RDONLY))
		if err != nil {
			fail(2, "load: %v", err)
		}
		defer f.UnloadContainer()
		opts := []integrity.VerifierOpt{integrity.OptVerifyWithKeyRing(keyring(os.Args[3]))}
		if *legacy {
			opts = append(opts, integrity.OptVerifyLegacy())
		}
		if *group != 0 {
			opts = append(opts, integrity.OptVerifyGroup(uint32(*group)))
		}
		if *object != 0 {
			opts = append(opts, integrity.OptVerifyObject(uint32(*object)))
		}
		v, err := integrity.NewVerifier(f, opts...)
		if err != nil {
			fail(1, "verifier: %v", err)
		}
		if err := v.Verify(); err != nil {
			fail(1, "verify: %v", err)
		}
		fmt.Println("verified")
	case "sign":
		fs := flag.NewFlagSet("sign", flag.ExitOnError)
		deterministic := fs.Bool("deterministic", false, "zero SIF timestamps")
		fs.Parse(os.Args[4:])
		kr := keyring(os.Args[3])
		f, err := sif.LoadContainerFromPath(image)
		if err != nil {
			fail(2, "load: %v", err)
		}
		defer f.UnloadContainer()
		opts := []integrity.SignerOpt{
			integrity.OptSignWithEntity(kr[0]),
			integrity.OptSignWithTime(func() time.Time { return time.Unix(1593475316, 0) }),
		}
		if *deterministic {
			opts = append(opts, integrity.OptSignDeterministic())
		}
		s, err := integrity.NewSigner(f, opts...)
		if err != nil {
			fail(2, "signer: %v", err)
		}
		if err := s.Sign(); err != nil {
			fail(2, "sign: %v", err)
		}
		fmt.Println("signed")
	case "list":
		f, err := sif.LoadContainerFromPath(image, sif.OptLoadWithFlag(os.O_RDONLY))
		if err != nil {
			fail(2, "load: %v", err)
		}
		defer f.UnloadContainer()
		f.WithDescriptors(func(d sif.Descriptor) bool {
			link, isGroup := d.LinkedID()
			fmt.Printf("%d %d %d %t %s %d\n", d.ID(), d.GroupID(), link, isGroup, d.DataType(), d.Size())
			return false
		})
	default:
		fail(2, "unknown command %q", cmd)
	}
}
