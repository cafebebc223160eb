// Command tlogcheck checks, with Go's reference transparency-log code, what sif-lifecycle's log
// publishes: it opens signed checkpoints with golang.org/x/mod/sumdb/note, and checks leaf
// hashes, tree hashes, inclusion proofs and consistency proofs with golang.org/x/mod/sumdb/tlog,
// also recomputing every proof from our stored hashes (which use Go's stored hash numbering).
//
// Input is one JSON document on stdin; output is one line per check. Exit status 0 means every
// check passed, 1 means at least one failed (each failure is printed as "FAIL ...").
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type proof struct {
	Index    int64    `json:"index"`
	TreeSize int64    `json:"tree_size"`
	OldSize  int64    `json:"old_size"`
	NewSize  int64    `json:"new_size"`
	Hashes   []string `json:"hashes"`
}

type input struct {
	VerifierKey  string   `json:"verifier_key"`
	Checkpoints  []string `json:"checkpoints"`
	Leaves       []string `json:"leaves"`
	StoredHashes []string `json:"stored_hashes"`
	Inclusion    []proof  `json:"inclusion"`
	Consistency  []proof  `json:"consistency"`
}

var failures int

func fail(format string, args ...interface{}) {
	failures++
	fmt.Printf("FAIL "+format+"\n", args...)
}

func decodeHashes(list []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		h, err := tlog.ParseHash(s)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// openCheckpoint verifies the note signature and parses the C2SP checkpoint body.
func openCheckpoint(text string, verifiers note.Verifiers) (origin string, size int64, root tlog.Hash, err error) {
	n, err := note.Open([]byte(text), verifiers)
	if err != nil {
		return "", 0, root, err
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return "", 0, root, fmt.Errorf("checkpoint has fewer than three lines")
	}
	size, err = strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return "", 0, root, err
	}
	root, err = tlog.ParseHash(lines[2])
	return lines[0], size, root, err
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Println("FAIL reading input:", err)
		os.Exit(2)
	}
	verifier, err := note.NewVerifier(in.VerifierKey)
	if err != nil {
		fmt.Println("FAIL verifier key:", err)
		os.Exit(1)
	}
	verifiers := note.VerifierList(verifier)

	stored, err := decodeHashes(in.StoredHashes)
	if err != nil {
		fmt.Println("FAIL stored hashes:", err)
		os.Exit(2)
	}
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("stored hash %d not given", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})

	records := make([]tlog.Hash, len(in.Leaves))
	for i, s := range in.Leaves {
		leaf, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			fail("leaf %d: %v", i, err)
			continue
		}
		records[i] = tlog.RecordHash(leaf)
		idx := tlog.StoredHashIndex(0, int64(i))
		if idx >= int64(len(stored)) || stored[idx] != records[i] {
			fail("leaf %d: our stored leaf hash differs from Go's RecordHash", i)
		}
	}
	if len(in.Leaves) > 0 && tlog.StoredHashCount(int64(len(in.Leaves))) != int64(len(stored)) {
		fail("stored hash count %d, Go expects %d", len(stored), tlog.StoredHashCount(int64(len(in.Leaves))))
	}

	roots := map[int64]tlog.Hash{}
	for i, text := range in.Checkpoints {
		origin, size, root, err := openCheckpoint(text, verifiers)
		if err != nil {
			fail("checkpoint %d: %v", i, err)
			continue
		}
		if size <= int64(len(in.Leaves)) {
			if th, err := tlog.TreeHash(size, reader); err != nil || th != root {
				fail("checkpoint %d: Go's TreeHash over our stored hashes differs (%v)", i, err)
				continue
			}
		}
		roots[size] = root
		fmt.Printf("ok checkpoint %s size %d\n", origin, size)
	}

	for _, p := range in.Inclusion {
		hashes, err := decodeHashes(p.Hashes)
		root, known := roots[p.TreeSize]
		if err != nil || !known || p.Index >= int64(len(records)) {
			fail("inclusion %d/%d: bad input (%v, checkpoint known %v)", p.Index, p.TreeSize, err, known)
			continue
		}
		if err := tlog.CheckRecord(hashes, p.TreeSize, root, p.Index, records[p.Index]); err != nil {
			fail("inclusion %d/%d: CheckRecord: %v", p.Index, p.TreeSize, err)
			continue
		}
		goProof, err := tlog.ProveRecord(p.TreeSize, p.Index, reader)
		if err != nil || fmt.Sprint(goProof) != fmt.Sprint(tlog.RecordProof(hashes)) {
			fail("inclusion %d/%d: differs from Go's ProveRecord (%v)", p.Index, p.TreeSize, err)
			continue
		}
		fmt.Printf("ok inclusion %d/%d\n", p.Index, p.TreeSize)
	}

	for _, p := range in.Consistency {
		hashes, err := decodeHashes(p.Hashes)
		oldRoot, knownOld := roots[p.OldSize]
		newRoot, knownNew := roots[p.NewSize]
		if err != nil || !knownOld || !knownNew {
			fail("consistency %d->%d: bad input (%v)", p.OldSize, p.NewSize, err)
			continue
		}
		if err := tlog.CheckTree(hashes, p.NewSize, newRoot, p.OldSize, oldRoot); err != nil {
			fail("consistency %d->%d: CheckTree: %v", p.OldSize, p.NewSize, err)
			continue
		}
		goProof, err := tlog.ProveTree(p.NewSize, p.OldSize, reader)
		if err != nil || fmt.Sprint(goProof) != fmt.Sprint(tlog.TreeProof(hashes)) {
			fail("consistency %d->%d: differs from Go's ProveTree (%v)", p.OldSize, p.NewSize, err)
			continue
		}
		fmt.Printf("ok consistency %d->%d\n", p.OldSize, p.NewSize)
	}

	if failures > 0 {
		os.Exit(1)
	}
}
