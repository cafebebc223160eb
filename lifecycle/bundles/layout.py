"""Where things live inside a bundle: one place, shared by the exporter and the verifiers."""

from __future__ import annotations

ROOTS = "certs/roots.pem"
INTERMEDIATES = "certs/intermediates.pem"
LEAVES = "certs/leaves"
CRLS = "crls"
OCSP = "ocsp"
KEYS = "keys"
PGP_KEYRING = "keys/pgp-keyring.asc"
BUNDLE_KEY = "bundle-key.pub"
LOG_KEY = "tlog/verifier-key.txt"
LOG_CHECKPOINT = "tlog/checkpoint.txt"
LOG_CONSISTENCY = "tlog/consistency.json"
README = "README"
ECL = "ecl.toml"
HISTORICAL = "historical"
"""Retired keys and their certificates: for the record only, never trusted for verification."""


def leaf(serial: str) -> str:
    return f"{LEAVES}/{serial}.pem"


TSA_ROOTS = "tsa/roots.pem"
TSA_CHAIN = "tsa/chain.pem"
"""The local TSA's certificates (every generation) and the intermediate that issued them; their
CRLs are the CA's, under ``crls/``."""


def historical(path: str) -> str:
    return f"{HISTORICAL}/{path}"
