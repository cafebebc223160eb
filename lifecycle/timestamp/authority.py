"""A local RFC 3161 time-stamping authority: a request in, a signed ``TimeStampResp`` out.

Pure: the key, certificate chain, clock and serial source are given. The token is a CMS
SignedData over a TSTInfo (RFC 3161 2.4.2) with the signed attributes RFC 3161/5816 ask for
(contentType, messageDigest, signingCertificateV2 naming the TSA certificate), built with
asn1crypto and signed with cryptography. A request that cannot be parsed, or asks for a hash
this TSA does not accept, gets a ``rejection`` response, never an exception.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from lifecycle.clock import Clock
from lifecycle.pki.keys import PrivateKey

POLICY_OID = "1.3.6.1.4.1.57264.3.1"
"""The policy named in our tokens (a private arc; verifiers here do not require one)."""
DIGESTS: dict[str, int] = {"sha256": 32, "sha384": 48, "sha512": 64}
"""Hash algorithms accepted in requests, with their digest sizes."""
MAX_REQUEST = 16 * 1024
DEFAULT_ACCURACY = timedelta(seconds=1)


@dataclass(frozen=True)
class TsaIdentity:
    """The TSA's key and certificate, then the chain that certifies it (up to, not incl., root)."""

    key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


class _Rejection(core.Sequence):  # type: ignore[misc]
    """``TimeStampResp`` without its token (asn1crypto's makes the token mandatory; RFC 3161
    2.4.2 makes it OPTIONAL, absent when the status is a rejection)."""

    _fields: ClassVar[list[tuple[str, type]]] = [("status", tsp.PKIStatusInfo)]


def _rejection(failure: str, text: str) -> bytes:
    status = tsp.PKIStatusInfo({"status": "rejection", "status_string": [text],
                                "fail_info": tsp.PKIFailureInfo({failure})})
    return bytes(_Rejection({"status": status}).dump())


def _signature_algorithm(key: PrivateKey) -> tuple[str, str]:
    """(digest, CMS signature algorithm) for the TSA key."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "sha512", "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        digest = "sha384" if key.curve.key_size >= 384 else "sha256"
        return digest, f"{digest}_ecdsa"
    return "sha256", "sha256_rsa"


def _sign(key: PrivateKey, data: bytes, digest: str) -> bytes:
    algorithm = hashes.SHA384() if digest == "sha384" else hashes.SHA256()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(algorithm))
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.sign(data, padding.PKCS1v15(), algorithm)


class TimestampAuthority:
    """Answers ``TimeStampReq`` DER with ``TimeStampResp`` DER (RFC 3161 section 2.4)."""

    def __init__(self, identity: TsaIdentity, next_serial: Callable[[], int], clock: Clock, *,
                 accuracy: timedelta = DEFAULT_ACCURACY) -> None:
        self.identity = identity
        self.next_serial = next_serial
        self.clock = clock
        self.accuracy = accuracy
        cert = identity.certificate
        self._digest, self._algorithm = _signature_algorithm(identity.key)
        self._ess = tsp.SigningCertificateV2({"certs": [tsp.ESSCertIDv2({
            "hash_algorithm": {"algorithm": "sha256"},
            "cert_hash": hashlib.sha256(_der(cert)).digest(),
            "issuer_serial": {
                "issuer": [asn1_x509.GeneralName(
                    name="directory_name",
                    value=asn1_x509.Name.load(cert.issuer.public_bytes()))],
                "serial_number": cert.serial_number}})]})
        # kept as DER and loaded (lazily, so dumped as is) per token: asn1crypto re-encodes a
        # reused parsed object each time it is placed in a new structure (~25 ms a token)
        self._ess_attr = cms.CMSAttribute({"type": "signing_certificate_v2",
                                           "values": [self._ess]}).dump()
        self._type_attr = cms.CMSAttribute({"type": "content_type",
                                            "values": ["tst_info"]}).dump()
        self._digest_alg = algos.DigestAlgorithm({"algorithm": self._digest}).dump()
        self._signature_alg = algos.SignedDigestAlgorithm({"algorithm": self._algorithm}).dump()
        self._certificates = [_der(c) for c in (cert, *identity.chain)]
        self._sid = cms.SignerIdentifier(name="issuer_and_serial_number", value={
            "issuer": asn1_x509.Name.load(cert.issuer.public_bytes()),
            "serial_number": cert.serial_number}).dump()

    def respond(self, request: bytes) -> bytes:
        """The DER response to ``request``: granted, or a rejection saying what was wrong."""
        if not request or len(request) > MAX_REQUEST:
            return _rejection("bad_data_format", "the request is empty or too large")
        try:
            req = tsp.TimeStampReq.load(request, strict=True)
            version = req["version"].native
            algorithm = req["message_imprint"]["hash_algorithm"]["algorithm"].native
            hashed = req["message_imprint"]["hashed_message"].native
            nonce = req["nonce"].native
            policy = req["req_policy"].native
            cert_req = bool(req["cert_req"].native)
            has_extensions = bool(req["extensions"].native)
        except (ValueError, TypeError, KeyError):
            return _rejection("bad_data_format", "the request is not a DER TimeStampReq")
        if version != "v1":
            return _rejection("bad_request", "only version 1 requests are accepted")
        if algorithm not in DIGESTS or not isinstance(hashed, bytes) or \
                len(hashed) != DIGESTS[algorithm]:
            return _rejection("bad_alg", f"message imprints must use one of {', '.join(DIGESTS)}")
        if policy is not None and policy != POLICY_OID:
            return _rejection("unaccepted_policy", f"this TSA only issues policy {POLICY_OID}")
        if has_extensions:
            return _rejection("unaccepted_extension", "this TSA accepts no request extensions")
        return self._granted(algorithm, hashed, nonce, cert_req, self.clock())

    def _granted(self, algorithm: str, hashed: bytes, nonce: int | None, cert_req: bool,
                 now: datetime) -> bytes:
        micros = self.accuracy // timedelta(microseconds=1)
        accuracy = {"seconds": micros // 1_000_000, "millis": micros // 1000 % 1000,
                    "micros": micros % 1000}
        info: dict[str, object] = {
            "version": "v1", "policy": POLICY_OID,
            "message_imprint": {"hash_algorithm": {"algorithm": algorithm},
                                "hashed_message": hashed},
            "serial_number": self.next_serial(),
            "gen_time": now.replace(microsecond=now.microsecond // 1000 * 1000),
            "accuracy": {k: v for k, v in accuracy.items() if v},
        }
        if nonce is not None:
            info["nonce"] = nonce
        content = tsp.TSTInfo(info).dump()
        attrs = cms.CMSAttributes([
            cms.CMSAttribute.load(self._type_attr),
            cms.CMSAttribute({"type": "message_digest",
                              "values": [hashlib.new(self._digest, content).digest()]}),
            cms.CMSAttribute.load(self._ess_attr),
        ])
        signature = _sign(self.identity.key, attrs.dump(), self._digest)
        signer = cms.SignerInfo({
            "version": "v1", "sid": cms.SignerIdentifier.load(self._sid),
            "digest_algorithm": algos.DigestAlgorithm.load(self._digest_alg),
            "signed_attrs": attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm.load(self._signature_alg),
            "signature": signature})
        signed: dict[str, object] = {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm.load(self._digest_alg)],
            "encap_content_info": {"content_type": "tst_info",
                                   "content": core.ParsableOctetString(content)},
            "signer_infos": [signer]}
        if cert_req:
            signed["certificates"] = [asn1_x509.Certificate.load(c) for c in self._certificates]
        token = cms.ContentInfo({"content_type": "signed_data",
                                 "content": cms.SignedData(signed)})
        return bytes(tsp.TimeStampResp({"status": {"status": "granted"},
                                        "time_stamp_token": token}).dump())
