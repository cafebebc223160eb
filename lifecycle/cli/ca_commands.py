"""``sif-lifecycle ca``: the local certificate authority (``serve`` publishes its CRLs and OCSP)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lifecycle.cli.common import UtcTime, passphrase_file_option, read_passphrase
from lifecycle.cli.pki_options import (
    ca_service,
    config_option,
    emit,
    key_service,
    open_config,
)
from lifecycle.pki.certs import certificate_pem
from lifecycle.pki.crl import REASONS, parse_reason
from lifecycle.pki.keys import KeyAlgorithm
from lifecycle.store.ca_service import EPHEMERAL, INTERMEDIATE, OCSP, ROOT, CaService

_ALGORITHMS = click.Choice([a.value for a in KeyAlgorithm])
_OUTPUT = click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
                       help="Write here instead of stdout.")


@click.group()
def ca() -> None:
    """The local CA: root, intermediate, code-signing certificates, revocation, CRLs.

    \b
    Example:
      export SIF_LIFECYCLE_PASSPHRASE=...
      sif-lifecycle ca init
      sif-lifecycle ca issue 3f2a9c1e --name "Build Bot" -o signer.crt
    """


@ca.command()
@config_option
@passphrase_file_option
@click.option("--root-algorithm", type=_ALGORITHMS, default="p384", show_default=True)
@click.option("--intermediate-algorithm", type=_ALGORITHMS, default="p256", show_default=True)
@click.option("--root-days", type=click.IntRange(1), default=7300, show_default=True)
@click.option("--intermediate-days", type=click.IntRange(1), default=3650, show_default=True)
@click.option("--name", default="sif-lifecycle", show_default=True,
              help="Common name prefix of the CA certificates.")
@click.option("--ephemeral", is_flag=True,
              help="Also create the ephemeral signing CA (under the root) for 'sign --ephemeral'; "
                   "on an existing CA, create only it.")
def init(config_path: Path | None, passphrase_file: Path | None, root_algorithm: str,
         intermediate_algorithm: str, root_days: int, intermediate_days: int, name: str,
         ephemeral: bool) -> None:
    """Create the root and intermediate CA, the OCSP responder certificate and first CRLs.

    \b
    Example:
      sif-lifecycle ca init --root-algorithm rsa4096 --root-days 7300 --intermediate-days 1825
      sif-lifecycle ca init --ephemeral
    """
    service = ca_service(open_config(config_path), read_passphrase(passphrase_file, confirm=True))
    if ephemeral and service.has_role(ROOT):
        _echo_ca(service.init_ephemeral(lifetime=timedelta(days=intermediate_days),
                                        common_name=name))
        return
    root, inter = service.init(
        root_algorithm=KeyAlgorithm(root_algorithm),
        intermediate_algorithm=KeyAlgorithm(intermediate_algorithm),
        root_lifetime=timedelta(days=root_days),
        intermediate_lifetime=timedelta(days=intermediate_days), common_name=name)
    made = [root, inter]
    if ephemeral:
        made.append(service.init_ephemeral(lifetime=timedelta(days=intermediate_days),
                                           common_name=name))
    for cert in made:
        _echo_ca(cert)


def _echo_ca(cert: x509.Certificate) -> None:
    click.echo(f"{cert.serial_number:x} {cert.subject.rfc4514_string()} "
               f"until {cert.not_valid_after_utc.isoformat()}")


def _emit_issued(cert: x509.Certificate, output: Path | None) -> None:
    emit(certificate_pem(cert), output)
    click.echo(f"serial {cert.serial_number:x} valid {cert.not_valid_before_utc.isoformat()} "
               f"to {cert.not_valid_after_utc.isoformat()}", err=True)


@ca.command()
@config_option
@passphrase_file_option
@click.argument("key_id")
@click.option("--name", required=True, help="Common name of the signer.")
@click.option("--days", type=click.IntRange(1), default=365, show_default=True)
@_OUTPUT
def issue(config_path: Path | None, passphrase_file: Path | None, key_id: str, name: str,
          days: int, output: Path | None) -> None:
    """Issue a code-signing certificate for the stored PEM key KEY_ID.

    \b
    Example:
      sif-lifecycle ca issue 3f2a9c1e --name "Build Bot" --days 365 -o signer.crt
    """
    service = ca_service(open_config(config_path), read_passphrase(passphrase_file))
    _emit_issued(service.issue(key_id, name, timedelta(days=days)).certificate, output)


@ca.command()
@config_option
@passphrase_file_option
@click.argument("serial")
@click.option("--days", type=click.IntRange(1), default=365, show_default=True)
@_OUTPUT
def reissue(config_path: Path | None, passphrase_file: Path | None, serial: str, days: int,
            output: Path | None) -> None:
    """Re-issue certificate SERIAL: new serial and validity, same key and subject.

    \b
    Example:
      sif-lifecycle ca reissue 5d1c0e... --days 365 -o signer-2.crt
    """
    service = ca_service(open_config(config_path), read_passphrase(passphrase_file))
    _emit_issued(service.reissue(serial, timedelta(days=days)).certificate, output)


@ca.command("reissue-intermediate")
@config_option
@passphrase_file_option
@click.option("--days", type=click.IntRange(1),
              help="Lifetime (default: the current intermediate's), capped by the root's end.")
@_OUTPUT
def reissue_intermediate(config_path: Path | None, passphrase_file: Path | None,
                         days: int | None, output: Path | None) -> None:
    """Re-issue the intermediate now: same key and subject, today's URLs (AIA OCSP, which
    stock 'verify --ocsp-verify' needs on every certificate below the root).

    Every leaf it issued chains to the new certificate as to the old one; publish the new
    intermediate.pem (image sets' publish directories are refreshed by 'apply'/'serve').

    \b
    Example:
      sif-lifecycle ca reissue-intermediate -o intermediate.pem
    """
    service = ca_service(open_config(config_path), read_passphrase(passphrase_file))
    lifetime = timedelta(days=days) if days is not None else None
    _emit_issued(service.reissue_intermediate(lifetime).certificate, output)


@ca.command()
@config_option
@passphrase_file_option
@click.argument("serial")
@click.option("--reason", default="unspecified", show_default=True,
              help=f"One of: {', '.join(REASONS)}.")
@click.option("--invalidity-date", type=UtcTime(),
              help="When the key became unsafe; signatures made before it stay valid.")
def revoke(config_path: Path | None, passphrase_file: Path | None, serial: str, reason: str,
           invalidity_date: datetime | None) -> None:
    """Revoke certificate SERIAL and publish a new CRL.

    \b
    Example:
      sif-lifecycle ca revoke 5d1c0e... --reason keyCompromise \\
          --invalidity-date 2026-03-01T00:00:00Z
    """
    flag = parse_reason(reason)
    service = ca_service(open_config(config_path), read_passphrase(passphrase_file))
    record = service.revoke(serial, flag, invalidity_date=invalidity_date)
    click.echo(f"revoked {serial} at {record.revoked_at.isoformat()} ({flag.value})")


@ca.command()
@config_option
@passphrase_file_option
@click.option("--issuer", type=click.Choice([r.value for r in (INTERMEDIATE, ROOT, EPHEMERAL)]),
              default=INTERMEDIATE.value, show_default=True,
              help="Whose CRL: the intermediate's (leaves), the root's or the ephemeral CA's.")
@click.option("--der", is_flag=True, help="DER instead of PEM.")
@click.option("--force", is_flag=True, help="Publish a new CRL even if the current one is fresh.")
@_OUTPUT
def crl(config_path: Path | None, passphrase_file: Path | None, issuer: str, der: bool,
        force: bool, output: Path | None) -> None:
    """Write the current full CRL (a new one once half its lifetime has passed).

    \b
    Example:
      sif-lifecycle ca crl -o intermediate.crl
      sif-lifecycle ca crl --issuer root -o root.crl
    """
    service = ca_service(open_config(config_path), read_passphrase(passphrase_file))
    data = service.publish_crl(issuer, force=force)
    if not der:
        data = x509.load_der_x509_crl(data).public_bytes(serialization.Encoding.PEM)
    emit(data, output)


@ca.command()
@config_option
@click.argument("role", type=click.Choice([r.value for r in (ROOT, INTERMEDIATE, OCSP, EPHEMERAL)]))
@_OUTPUT
def certificate(config_path: Path | None, role: str, output: Path | None) -> None:
    """Print the CA's ROLE certificate (PEM): the root to trust, the intermediate to chain.

    \b
    Example:
      sif-lifecycle ca certificate root -o root.pem
    """
    service = CaService(key_service(open_config(config_path)), b"")
    emit(certificate_pem(service.certificate(role)), output)


@ca.command(name="list")
@config_option
def list_(config_path: Path | None) -> None:
    """List issued certificates: serial, role, validity, subject.

    \b
    Example:
      sif-lifecycle ca list
    """
    service = CaService(key_service(open_config(config_path)), b"")
    for row in service.certificates():
        revoked = " REVOKED" if service.revocation(row) is not None else ""
        click.echo(f"{row.serial} {row.role:<12} {row.not_before.date()}..{row.not_after.date()}"
                   f" {row.subject}{revoked}")
