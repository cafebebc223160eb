"""OpenPGP keyservers over HKP (draft-shaw-openpgp-hkp): push, pull by fingerprint, search."""
