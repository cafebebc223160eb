"""verify at the proven signing time: expiry, revocation and invalidity dates against genTime,
and hostile tokens judged as if the signature were untimestamped."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from lifecycle.cli.main import cli
from lifecycle.errors import VerificationError
from lifecycle.integrity import dsse
from lifecycle.integrity.sign import _classify
from lifecycle.service.http import RunningServer, start_http
from lifecycle.sif import SifImage, create_image, json_spec, partition_spec
from lifecycle.sif.format import DataType
from lifecycle.sif.image import ObjectSpec
from lifecycle.sign import sign, signer_for
from lifecycle.store.ca_service import INTERMEDIATE, ROOT
from lifecycle.store.tsa_service import local_tsa
from lifecycle.timestamp.client import Timestamper
from lifecycle.timestamp.tokens import FIELD
from lifecycle.verify import TrustMaterial, verify
from tests.keygen import write_pem_pair
from tests.pki.conftest import PASSPHRASE, StoreCa, make_store_ca, open_store_ca

DAY = timedelta(days=1)


@dataclass
class Signed:
    store: StoreCa
    now: datetime
    image: Path
    leaf: x509.Certificate
    files: dict[str, Path]

    def trust(self, **changes: object) -> TrustMaterial:
        base = TrustMaterial(certificate=self.leaf, intermediates=(self.files["inter"],),
                             roots=(self.files["root"],), tsa_roots=(self.files["root"],),
                             crls=self.crls(), at=self.now + 40 * DAY)
        return base._replace(**changes)  # type: ignore[arg-type]

    def crls(self) -> tuple[bytes, ...]:
        return tuple(self.store.ca.publish_crl(r, now=self.now + 6 * DAY)
                     for r in (ROOT, INTERMEDIATE))


def _serve(store: StoreCa, at: datetime) -> RunningServer:
    return start_http(None, tsa=local_tsa(store.ca, lambda: at).respond)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Signed:
    """An image signed with a 30-day certificate, timestamped one day after issuance (built
    once; each test gets a copy of the store and files, see :func:`signed`)."""
    directory = tmp_path_factory.mktemp("signed")
    store = make_store_ca(directory)
    now = store.ca.clock()
    private, _ = write_pem_pair(directory, "signer", "ecdsa")
    row = store.keys.import_pem(private.read_bytes(), PASSPHRASE, path=private)
    leaf = store.ca.issue(row.fingerprint, "Timestamped Signer", 30 * DAY, now=now).certificate
    image = create_image(directory / "a.sif", [partition_spec(b"hsqs" + bytes(500)),
                                               json_spec({"k": "v"})])
    server = _serve(store, now + DAY)
    try:
        sign(image, signer=signer_for([private], timestamper=Timestamper.for_urls(
            [f"{server.url}/tsa"])))
    finally:
        server.stop()
    files = {"root": store.write("root.pem", _pem(store.ca.certificate(ROOT))),
             "inter": store.write("inter.pem", _pem(store.ca.certificate(INTERMEDIATE))),
             "leaf": store.write("leaf.pem", _pem(leaf)), "key": private}
    store.ca.engine.dispose()
    return Signed(store, now, image, leaf, files)


@pytest.fixture
def signed(template: Signed, tmp_path: Path) -> Iterator[Signed]:
    """A private copy of the template: tests revoke and rewrite freely."""
    base = template.store.directory
    copy = tmp_path / "signed"
    shutil.copytree(base, copy)
    store = open_store_ca(copy)
    try:
        yield Signed(store, template.now, copy / template.image.relative_to(base), template.leaf,
                     {k: copy / v.relative_to(base) for k, v in template.files.items()})
    finally:
        store.ca.engine.dispose()


def _pem(cert: x509.Certificate) -> bytes:
    from lifecycle.pki.certs import certificate_pem

    return certificate_pem(cert)


def _envelope(image: Path) -> tuple[int, dsse.Envelope]:
    with SifImage.open(image) as img:
        desc = next(d for d in img.objects if d.is_signature)
        envelope = _classify(img, desc).envelope
    assert envelope is not None
    return desc.id, envelope


def _set_tokens(image: Path, tokens: list[str]) -> None:
    """Rewrite the signature's extension (unsigned) with ``tokens`` (base64 texts)."""
    object_id, envelope = _envelope(image)
    sig = envelope.signatures[0]
    assert sig.extension is not None
    ext = dsse.Extension(sig.extension.kind, {**sig.extension.ext, FIELD: tokens})
    changed = envelope._replace(signatures=(sig._replace(extension=ext),))
    with SifImage.open(image, writable=True) as img:
        desc = img.object(object_id)
        img.replace(desc, ObjectSpec(DataType.SIGNATURE, changed.to_bytes(), group=0,
                                     linked_raw=desc.linked_raw, extra=desc.extra))


def _tokens(image: Path) -> list[str]:
    sig = _envelope(image)[1].signatures[0]
    assert sig.extension is not None
    return list(sig.extension.ext[FIELD])


def test_expired_certificate_verifies_at_the_proven_time(signed: Signed) -> None:
    result = verify(signed.image, signed.trust())
    assert result.certificate is not None
    assert result.certificate.validated_at == signed.now.replace(microsecond=0) + DAY
    assert "RFC 3161 token from" in result.certificate.time_source
    (proven,) = result.proven or ()
    assert proven.at == result.certificate.validated_at
    with pytest.raises(VerificationError, match="Timestamped Signer"):  # no token: judged at --at
        verify(signed.image, signed.trust(tsa_roots=()))


def test_revocation_after_the_proven_time_does_not_invalidate(signed: Signed) -> None:
    signed.store.ca.revoke(f"{signed.leaf.serial_number:x}", x509.ReasonFlags.key_compromise,
                           invalidity_date=signed.now + 3 * DAY, now=signed.now + 5 * DAY)
    assert verify(signed.image, signed.trust()).ok


def test_revocation_without_invalidity_date_counts_from_its_date(signed: Signed) -> None:
    signed.store.ca.revoke(f"{signed.leaf.serial_number:x}", x509.ReasonFlags.superseded,
                           now=signed.now + 5 * DAY)
    assert verify(signed.image, signed.trust()).ok
    with pytest.raises(VerificationError, match="revoked"):
        verify(signed.image, signed.trust(tsa_roots=(), at=signed.now + 6 * DAY))


def test_compromise_before_the_proven_time_invalidates(signed: Signed) -> None:
    signed.store.ca.revoke(f"{signed.leaf.serial_number:x}", x509.ReasonFlags.key_compromise,
                           invalidity_date=signed.now + DAY / 2, now=signed.now + 5 * DAY)
    with pytest.raises(VerificationError, match="compromised since"):
        verify(signed.image, signed.trust())


def test_token_over_other_data_is_rejected(signed: Signed, tmp_path: Path) -> None:
    other = create_image(tmp_path / "b.sif", [json_spec({"other": 1})])
    server = _serve(signed.store, signed.now + DAY)
    try:
        sign(other, signer=signer_for([signed.files["key"]], timestamper=Timestamper.for_urls(
            [f"{server.url}/tsa"])))
    finally:
        server.stop()
    _set_tokens(signed.image, _tokens(other))
    _rejected(signed, "covers other data")


def test_malformed_token_is_rejected(signed: Signed) -> None:
    _set_tokens(signed.image, [base64.b64encode(b"\x30\x82\xff\xff junk").decode()])
    _rejected(signed, "malformed token")


def test_untrusted_tsa_is_rejected(signed: Signed, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from lifecycle.pki import ca, keys

    key = keys.generate_private_key(keys.KeyAlgorithm.P256)
    stranger = ca.build_root(key, ca.name("Stranger Root"), not_before=signed.now - DAY,
                             lifetime=timedelta(days=90))
    path = tmp_path / "stranger.pem"
    path.write_bytes(stranger.public_bytes(serialization.Encoding.PEM))
    result = verify(signed.image, signed.trust(tsa_roots=(path,), at=signed.now + 2 * DAY))
    (proven,) = result.proven or ()
    assert proven.at is None and "token rejected" in proven.rejected[0]


def test_disagreeing_tokens_prove_nothing(signed: Signed) -> None:
    early = _tokens(signed.image)
    sig = _envelope(signed.image)[1].signatures[0]
    server = _serve(signed.store, signed.now + 2 * DAY)
    try:
        late = Timestamper.for_urls([f"{server.url}/tsa"])(sig.sig)
    finally:
        server.stop()
    _set_tokens(signed.image, [*early, base64.b64encode(late[0]).decode()])
    _rejected(signed, "tokens disagree")


def _rejected(signed: Signed, reason: str) -> None:
    """Judged as untimestamped (at --at, when the certificate had expired), saying why."""
    with pytest.raises(VerificationError, match=f"timestamps prove nothing: .*{reason}"):
        verify(signed.image, signed.trust())
    result = verify(signed.image, signed.trust(at=signed.now + 2 * DAY))
    (proven,) = result.proven or ()
    assert proven.at is None and any(reason in r for r in proven.rejected), proven.rejected
    assert result.certificate is not None and not result.certificate.time_source


def test_cli_prints_proven_time_and_json_carries_it(signed: Signed) -> None:
    args = ["verify", "--certificate", str(signed.files["leaf"]), "--certificate-intermediates",
            str(signed.files["inter"]), "--certificate-roots", str(signed.files["root"]),
            "--tsa-roots", str(signed.files["root"]), "--at",
            (signed.now + 40 * DAY).isoformat()]
    for index, der in enumerate(signed.crls()):
        crl = signed.store.write(f"{index}.crl", der)
        args += ["--crl", str(crl)]
    runner = CliRunner()
    text = runner.invoke(cli, [*args, str(signed.image)])
    assert text.exit_code == 0, text.output
    assert "Proven signing time of" in text.output and "RFC 3161 token from" in text.output
    doc = json.loads(runner.invoke(cli, [*args, "--json", str(signed.image)]).output)
    (stamp,) = doc["signatures"][0]["timestamps"]
    assert stamp["proven_time"] == (signed.now.replace(microsecond=0) + DAY).isoformat()
    assert doc["certificate"]["time_source"].startswith("RFC 3161 token from")
