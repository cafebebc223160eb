"""``sif-lifecycle sign`` and ``verify``, mirroring ``singularity``/``apptainer`` where they overlap."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lifecycle.cli.common import (
    UtcTime,
    passphrase_file_option,
    passphrase_source,
    read_passphrase,
)
from lifecycle.cli.many import jobs_option, verify_each
from lifecycle.cli.progress import ProgressBar
from lifecycle.cli.verify_output import show, verify_and_show
from lifecycle.errors import LifecycleError
from lifecycle.files import read_document
from lifecycle.integrity import dsse
from lifecycle.integrity.gojson import load_json
from lifecycle.integrity.policy import Policy
from lifecycle.pki.revocation import REVOCATION_MODES, RevocationMode
from lifecycle.sign import sign as sign_image
from lifecycle.sign import signer_for
from lifecycle.verification.identity import IdentityPolicy
from lifecycle.verify import TrustMaterial, load_log_verifiers
from lifecycle.verify import verify as verify_trust

if TYPE_CHECKING:
    from lifecycle.integrity.sign import SignOptions

KEY_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
IMAGE = click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))


def _group_options(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option("-i", "--sif-id", "object_ids", type=int, multiple=True,
                     help="Only the object with this ID (repeatable).")(f)  # fmt: skip
    return click.option("-g", "--group-id", "groups", type=int, multiple=True,
                        help="Only this object group (repeatable).")(f)  # fmt: skip


def _image_size(image: Path) -> int:
    return image.stat().st_size


def _extension(path: Path | None) -> dsse.Extension | None:
    if path is None:
        return None
    doc = load_json(read_document(path))
    if not (isinstance(doc, dict) and isinstance(doc.get("kind"), str)
            and isinstance(doc.get("ext"), dict)):  # fmt: skip
        raise LifecycleError('extension file must hold {"kind": "...", "ext": {...}}', path=path)
    return dsse.Extension(doc["kind"], doc["ext"])


def _ephemeral_options(f: click.decorators.FC) -> click.decorators.FC:
    options = [
        click.option("--ephemeral", is_flag=True,
                     help="Sign with a key made in memory and destroyed after signing, "
                          "certified for minutes by the ephemeral CA and recorded in the log."),
        click.option("--identity", help="Signer identity put in the certificate: email or URI."),
        click.option("--log-url", help="Transparency log served by 'sif-lifecycle serve' "
                                       "(default: the config's [tlog], else the local --log-db)."),
        click.option("--log-db", envvar="SIF_LIFECYCLE_TLOG_DB", default=None,
                     help="Local log database (env SIF_LIFECYCLE_TLOG_DB; default: the config's "
                          "[tlog] log, else tlog.db)."),
        click.option("--log-key-file", envvar="SIF_LIFECYCLE_TLOG_KEY", default=None,
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="Local log's key file (env SIF_LIFECYCLE_TLOG_KEY; default: the config's "
                          "[tlog] key_file, else tlog-key.json)."),
        click.option("--log-key", "log_keys", multiple=True,
                     help="Pinned verifier key of the log (string or file); the evidence "
                          "the log returns must verify with it."),
        click.option("--lifetime", type=click.IntRange(1, 24 * 60), default=10,
                     show_default=True, help="Certificate lifetime in minutes."),
        click.option("--key-algorithm", type=click.Choice(["p256", "ed25519"]), default="p256",
                     show_default=True, help="Algorithm of the in-memory key."),
        # pki_options.config_option would import the store: verify must stay quick to start
        click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
                     envvar="SIF_LIFECYCLE_CONFIG", help="TOML config of the CA (env "
                                                         "SIF_LIFECYCLE_CONFIG)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command()
@click.option("--key", "keys", type=KEY_FILE, multiple=True,
              help="PEM private key (DSSE; repeat to put several keys in one envelope) or "
                   "armored PGP private key (clear-sign).")  # fmt: skip
@_group_options
@passphrase_file_option
@click.option("--deterministic", is_flag=True,
              help="Zero timestamps in the SIF, as the reference's deterministic mode.")
@click.option("--separate-object", is_flag=True,
              help="Reference behaviour: add a new signature object even if the group already "
                   "has an envelope (stock verify then needs every key's object to pass).")
@click.option("--extension-file", type=KEY_FILE,
              help='JSON {"kind": ..., "ext": {...}} stored in the DSSE signature (DSSE v1.1).')
@click.option("--timestamp-url", "timestamp_urls", multiple=True, metavar="URL",
              help="RFC 3161 time-stamping authority (repeatable; every one must answer): its "
                   "token over each DSSE signature goes into the signature's extension.")
@_ephemeral_options
@IMAGE
def sign(
    keys: tuple[Path, ...], groups: tuple[int, ...], object_ids: tuple[int, ...],
    passphrase_file: Path | None, deterministic: bool, separate_object: bool,
    extension_file: Path | None, ephemeral: bool, identity: str | None, log_url: str | None,
    log_db: str | None, log_key_file: Path | None, log_keys: tuple[str, ...], lifetime: int,
    key_algorithm: str, config_path: Path | None, image: Path,
    timestamp_urls: tuple[str, ...] = (),
) -> None:  # fmt: skip
    """Sign the object groups of IMAGE (all groups by default).

    A PEM key makes a DSSE signature; an armored PGP key a clear-sign one. If the group already
    carries a DSSE envelope, the new signature is added INTO that envelope (one signature
    object per group), so `singularity verify --key OLD` and `--key NEW` both pass: a second
    signature object by another key would make stock verify fail. Existing signatures must
    still match the image, or signing is refused. --separate-object restores the reference's
    behaviour.

    \b
    Example:
      sif-lifecycle sign --key signing.pem image.sif
      SIF_LIFECYCLE_PASSPHRASE=... sif-lifecycle sign --key team.asc -g 1 image.sif
      sif-lifecycle sign --ephemeral --identity builder@example.org image.sif
      sif-lifecycle sign --key signing.pem --timestamp-url http://127.0.0.1:8080/tsa image.sif
    """
    from lifecycle.integrity.sign import SignOptions  # the signing machinery: not for a verify

    options = SignOptions(
        groups=list(groups), object_ids=list(object_ids), deterministic=deterministic,
        separate_object=separate_object,
    )  # fmt: skip
    if ephemeral:
        if keys or extension_file is not None or timestamp_urls:
            raise click.UsageError("--ephemeral makes its own key and the log proves its time: "
                                   "drop --key/--extension-file/--timestamp-url")
        if identity is None:
            raise click.UsageError("--ephemeral needs --identity (an email address or URI)")
        _sign_ephemeral(image, identity, options, passphrase_file, config_path, log_url, log_db,
                        log_key_file, log_keys, lifetime, key_algorithm)
        return
    timestamper = None
    if timestamp_urls:
        from lifecycle.timestamp.client import Timestamper

        timestamper = Timestamper.for_urls(timestamp_urls, required=len(timestamp_urls))
    signer = signer_for(keys, passphrase_source(passphrase_file), _extension(extension_file),
                        timestamper)
    with ProgressBar(_image_size(image), "hashing") as bar:
        done = sign_image(image, signer=signer, options=options, progress=bar)
    for item in done.signed:
        click.echo(
            f"Signature object {item.object_id} ({item.action}) for group {item.group} "
            f"covers objects {', '.join(map(str, item.objects))}"
        )
    click.echo(f"Signature created and applied to {image}")


def _sign_ephemeral(
    image: Path, identity: str, options: SignOptions, passphrase_file: Path | None,
    config_path: Path | None, log_url: str | None, log_db: str | None, log_key_file: Path | None,
    log_keys: tuple[str, ...], lifetime: int, key_algorithm: str,
) -> None:  # fmt: skip
    from datetime import timedelta

    from lifecycle.cli.pki_options import ca_service, open_config
    from lifecycle.pki.keys import KeyAlgorithm
    from lifecycle.service.transparency import config_log_client, http_log_client, local_client
    from lifecycle.sign import sign_ephemeral
    from lifecycle.tlog.client import LogClient

    passphrase = read_passphrase(passphrase_file)
    config = open_config(config_path)
    ca = ca_service(config, passphrase)
    configured = (config_log_client(config, passphrase)
                  if log_url is None and log_db is None and log_key_file is None else None)
    log: LogClient = (http_log_client(log_url, config.tlog) if log_url else configured
                      or local_client(log_db or "tlog.db", log_key_file or Path("tlog-key.json"), passphrase))
    with ProgressBar(_image_size(image), "hashing") as bar:
        result = sign_ephemeral(
            str(image), identity, ca, log, lifetime=timedelta(minutes=lifetime),
            algorithm=KeyAlgorithm(key_algorithm), log_keys=load_log_verifiers(log_keys),
            options=options, progress=bar)
    cert = result.certificate
    for item, entry in zip(result.signed, result.entries, strict=True):
        click.echo(f"Signature object {item.object_id} ({item.action}) for group {item.group}: "
                   f"{identity}, certificate {cert.serial_number:x} valid until "
                   f"{cert.not_valid_after_utc.isoformat()}, logged as {entry.checkpoint.origin} "
                   f"#{entry.index} at {entry.entry.integrated_time.isoformat()}")
    click.echo(f"Ephemeral signature applied to {image}; the key was destroyed")


def _certificate_options(f: click.decorators.FC) -> click.decorators.FC:
    options = [
        click.option("--certificate", type=KEY_FILE,
                     help="Code-signing certificate whose key verifies DSSE signatures; its path is "
                          "validated at --at (default now) against --certificate-roots."),
        click.option("--certificate-intermediates", type=KEY_FILE,
                     help="PEM bundle of intermediate CA certificates."),
        click.option("--certificate-roots", type=KEY_FILE, help="PEM bundle of trusted root certificates."),
        click.option("--crl", "crls", type=KEY_FILE, multiple=True,
                     help="CRL file (PEM or DER) as revocation evidence (repeatable)."),
        click.option("--ocsp-response", "ocsp_responses", type=KEY_FILE, multiple=True,
                     help="DER OCSP response file as revocation evidence (repeatable)."),
        click.option("--ocsp-verify", is_flag=True,
                     help="Fetch OCSP responses from the certificates' responders."),
        click.option("--revocation", type=click.Choice(REVOCATION_MODES), default="hard-fail",
                     show_default=True,
                     help="hard-fail: a certificate naming a CRL/OCSP location needs evidence; "
                          "soft-fail: missing evidence is a warning; require: evidence for all."),
        click.option("--at", type=UtcTime(),
                     help="Judge certificates and PGP key expiry at this time (default now), e.g. "
                          "the proven signing time."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _longterm_options(f: click.decorators.FC) -> click.decorators.FC:
    options = [
        click.option("--log-key", "log_keys", multiple=True,
                     help="Trusted transparency log verifier key (string or file; repeatable): "
                          "signatures carrying log evidence are judged at their logged time."),
        click.option("--identity", "identities", multiple=True,
                     help="Accepted signer identity (certificate SAN email or URI; repeatable)."),
        click.option("--identity-regexp", "identity_patterns", multiple=True,
                     help="Accepted identities as a full-match regular expression (repeatable)."),
        click.option("--issuer", "issuers", multiple=True,
                     help="Accepted certificate issuer, RFC 4514 name or common name."),
        click.option("--checkpoint-store", type=click.Path(file_okay=False, path_type=Path),
                     help="Directory remembering the newest trusted checkpoint per log; a log "
                          "that rewrote history since fails verification."),
        click.option("--log-url", help="Fetch consistency proofs from this log (otherwise no "
                                       "network is used)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command()
@click.option("--key", "keys", type=KEY_FILE, multiple=True,
              help="PEM public key, or armored PGP public key/keyring (repeatable).")
@_certificate_options
@_group_options
@click.option("-a", "--all", "all_objects", is_flag=True,
              help="With --legacy-insecure: check every grouped object.")
@click.option("--policy", default="all", show_default=True,
              help="all (reference: every signature must verify), any (one per group), or "
                   "threshold:N (N distinct keys, by key material, signed each group).")  # fmt: skip
@click.option("--legacy-insecure", is_flag=True,
              help="Check only legacy (pre-3.6) signatures, which do not protect metadata.")
@click.option("--json", "as_json", is_flag=True, help="Print per-signature results as JSON.")
@_longterm_options
@click.option("--bundle", type=click.Path(exists=True, path_type=Path),
              help="Verification bundle (directory or .tar.gz): its certificates, CRLs, OCSP "
                   "responses and keys, checked offline; no network is used.")
@click.option("--allow-stale", metavar="REASON",
              help="With --bundle: accept an expired bundle anyway, for this reason (printed "
                   "in a warning). Never the default; an older (rolled-back) bundle is refused.")
@click.option("--url", "keyservers", multiple=True,
              help="HKP keyserver (hkp://, hkps://, http(s)://) to fetch the PGP signers' keys "
                   "from by fingerprint, like singularity verify --url (repeatable); a served "
                   "key with another fingerprint or a bad self-signature is never used.")
@click.option("--tsa-roots", "tsa_roots", type=KEY_FILE, multiple=True,
              help="Trusted time-stamping authority root(s), PEM: signatures carrying valid "
                   "RFC 3161 tokens from them are judged at their proven signing time (--crl "
                   "files serve the TSA chain too).")
@click.option("--timestamps-required", type=click.IntRange(1, 8), default=1, show_default=True,
              help="Valid tokens a signature needs for its time to count (the latest counts).")
@jobs_option
@click.argument("images", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify(
    keys: tuple[Path, ...], certificate: Path | None, certificate_intermediates: Path | None,
    certificate_roots: Path | None, crls: tuple[Path, ...], ocsp_responses: tuple[Path, ...],
    ocsp_verify: bool, revocation: RevocationMode, at: datetime | None, groups: tuple[int, ...],
    object_ids: tuple[int, ...], all_objects: bool, policy: str, legacy_insecure: bool, as_json: bool,
    log_keys: tuple[str, ...], identities: tuple[str, ...], identity_patterns: tuple[str, ...],
    issuers: tuple[str, ...], checkpoint_store: Path | None, log_url: str | None, bundle: Path | None,
    allow_stale: str | None, keyservers: tuple[str, ...], jobs: int | None,
    images: tuple[Path, ...], tsa_roots: tuple[Path, ...] = (), timestamps_required: int = 1,
) -> None:  # fmt: skip
    """Verify the signatures of each IMAGE. Exit 0 verified, 1 failed, 2 usage or input error.

    Several images are verified at once on --jobs threads (default: every core), the results
    printed in the order given (with --json, one document per image), then a count on stderr;
    the status is that of the worst image.

    \b
    Example:
      sif-lifecycle verify --key signing.pub image.sif
      sif-lifecycle verify --key team-keyring.asc --json image.sif
      sif-lifecycle verify --key a.pub --key b.pub --policy threshold:2 image.sif
      sif-lifecycle verify --certificate leaf.pem --certificate-intermediates ca.pem \
        --certificate-roots root.pem --crl ca.crl --at 2026-05-01T12:00:00Z image.sif
      sif-lifecycle verify --log-key "$(cat log.vkey)" --identity builder@example.org \
        --certificate-roots root.pem --crl root.crl image.sif
      sif-lifecycle verify --bundle site-bundle.tar.gz image.sif
      sif-lifecycle verify --key signing.pub --jobs 2 images/*.sif
      sif-lifecycle verify --url hkps://keys.example.org image.sif
      sif-lifecycle verify --certificate leaf.pem --certificate-intermediates ca.pem \
        --certificate-roots root.pem --tsa-roots root.pem --crl ca.crl --crl root.crl image.sif
    """
    if allow_stale is not None and bundle is None:
        raise click.UsageError("--allow-stale applies to --bundle only")
    if ((identities or identity_patterns or issuers) and not (log_keys or bundle)) or (
            (checkpoint_store or log_url) and not log_keys):
        raise click.UsageError("--identity, --issuer, --checkpoint-store and --log-url need "
                               "--log-key (the log that proves when signatures were made); "
                               "--identity and --issuer also work with --bundle")
    trust = TrustMaterial(
        keys=keys, certificate=certificate,
        intermediates=(certificate_intermediates,) if certificate_intermediates else (),
        roots=(certificate_roots,) if certificate_roots else (), crls=crls,
        ocsp_responses=ocsp_responses, fetch_ocsp=ocsp_verify, revocation=revocation,
        log_keys=log_keys, identity=IdentityPolicy(identities, identity_patterns, issuers),
        checkpoint_store=checkpoint_store, log_url=log_url, bundle=bundle, at=at,
        allow_stale=allow_stale,
        policy=Policy.parse(policy), groups=groups, object_ids=object_ids,
        all_objects=all_objects, legacy=legacy_insecure, keyservers=keyservers,
        tsa_roots=tsa_roots, timestamps_required=timestamps_required)
    if len(images) == 1:
        verify_and_show(images[0], trust, as_json)
        return
    verify_each(images, lambda image, bar: verify_trust(image, trust, bar),
                lambda result, image: show(result, image, as_json), jobs)
