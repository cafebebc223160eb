"""The forecast oracle: every claim a report makes about an image, checked by real verification.

For each present image of a report (as of ``now``), with the material its set publishes
(``publish_directory``: root, intermediate, CRLs, keys, certificates) and, for logged images,
the log's verifier key:

- stock ``--certificate``: "verifies now" holds with the published certificate, intermediate,
  root and CRLs at ``now``; "until D" holds at D - 1 h and fails at D + 1 h; "no" fails now. The
  reference Go verifier (tests/interop/sifcheck) checks PGP keyrings only, not certificates at a
  time, so the stock rules are :func:`lifecycle.verify.verify` with a certificate and no log and
  no timestamps; dates are judged with no CRLs and ``soft-fail`` (stock checks revocation only
  when asked), since today's CRLs do not cover a date months ahead. An ephemeral image's
  certificate claims are checked with its leaf (from the store): "until D" or "expired D" holds
  5 minutes before D (it lasts only minutes) and fails an hour after.
- stock ``--key``: "verifies now" holds with the published keys; "no" fails with them.
- this tool: logged images verify with the log key, the set's identity and the root now and
  ten years on; "until D" holds at D - 1 h and fails at D + 1 h (``verify --at``); "indefinitely"
  by a planned renewal verifies now and the renewing action is due before the certificate ends.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from sqlalchemy.engine import Engine

from lifecycle.config import KeyType, Policies
from lifecycle.errors import LifecycleError
from lifecycle.model.fleet import CertInfo
from lifecycle.model.roles import CaRole
from lifecycle.model.status import ImageStatus
from lifecycle.reports import Forecast, ReportData
from lifecycle.store.queries import certificate_pems, ephemeral_leaves, latest_certificate_pem
from lifecycle.verification.identity import IdentityPolicy
from lifecycle.verify import TrustMaterial, verify

HOUR = timedelta(hours=1)


@dataclass
class Oracle:
    violations: list[str] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)
    """How many claims of each kind held (``certificate-until``, ``tool-logged``, ...)."""

    def expect(self, kind: str, forecast: Forecast, claim: str, holds: bool | str) -> None:
        """``holds``: True, or why the verification refuted the claim."""
        if holds is True:
            self.checked[kind] += 1
        else:
            self.violations.append(f"{forecast.path}: {claim}: {holds}")


@dataclass(frozen=True)
class _Published:
    root: Path
    intermediate: Path
    crls: tuple[Path, ...]
    keys: tuple[Path, ...]
    certificates: tuple[Path, ...]

    @classmethod
    def read(cls, directory: Path) -> _Published:
        return cls(directory / "root.pem", directory / "intermediate.pem",
                   tuple(sorted((directory / "crl").glob("*.crl"))),
                   tuple(sorted((directory / "keys").glob("*.pub"))),
                   tuple(sorted((directory / "certificates").glob("*.pem"))))


def _outcome(path: str, trust: TrustMaterial) -> bool | str:
    try:
        verify(path, trust)
    except LifecycleError as exc:
        return exc.message
    return True


def _any(path: str, trusts: list[TrustMaterial]) -> bool | str:
    """True if one of them verifies, else every reason (or that there was nothing to try)."""
    reasons = []
    for trust in trusts:
        outcome = _outcome(path, trust)
        if outcome is True:
            return True
        reasons.append(str(outcome))
    return "; ".join(reasons) or "no published material to try"


def _fails(outcome: bool | str) -> bool | str:
    return "it verified" if outcome is True else True


def check_report(oracle: Oracle, data: ReportData, policies: Policies, engine: Engine,
                 log_key: str | None) -> None:
    now = data.generated_at
    pems = certificate_pems(engine)
    leaves = {c.key_fingerprint: c for c in ephemeral_leaves(engine)}
    ephemeral_ca = latest_certificate_pem(engine, CaRole.EPHEMERAL)
    for f in data.forecasts:
        if f.status != ImageStatus.PRESENT:
            for h in (f.certificate, f.key, f.tool):
                oracle.expect("not-present", f, "an image not present does not verify",
                              True if not h.verifies else "claimed to verify")
            continue
        policy = policies.get(f.image_set)
        assert policy is not None and policy.publish_directory is not None, f.path
        pub = _Published.read(policy.publish_directory)

        def stock(at: datetime, *, dated: bool, pub: _Published = pub,
                  pgp: bool = policy.key_type is KeyType.PGP) -> list[TrustMaterial]:
            if pgp:  # stock verify with the keys the keyserver serves (published here too)
                return [TrustMaterial(pgp_keyring=b"".join(k.read_bytes() for k in pub.keys),
                                      at=at)] if pub.keys else []
            crls = () if dated else pub.crls
            return [TrustMaterial(certificate=c, intermediates=(pub.intermediate,),
                                  roots=(pub.root,), crls=crls, at=at,
                                  revocation="soft-fail" if dated else "hard-fail")
                    for c in pub.certificates]

        # stock --certificate
        cert = f.certificate
        if f.logged:
            _ephemeral_certificates(oracle, f, pub.root, pems, leaves, ephemeral_ca, now)
        elif cert.verifies:
            oracle.expect("certificate-now", f, "stock --certificate verifies now",
                          _any(f.path, stock(now, dated=False)))
            if cert.until is not None:
                oracle.expect("certificate-until", f, f"stock --certificate at {cert.until} - 1 h",
                              _any(f.path, stock(cert.until - HOUR, dated=True)))
                oracle.expect("certificate-until", f, f"stock --certificate fails at "
                              f"{cert.until} + 1 h",
                              _fails(_any(f.path, stock(cert.until + HOUR, dated=True))))
        else:
            oracle.expect("certificate-no", f, "stock --certificate fails now",
                          _fails(_any(f.path, stock(now, dated=False))))
        # stock --key
        keys = [TrustMaterial(keys=(k,), at=now) for k in pub.keys]
        if f.key.verifies:
            oracle.expect("key-now", f, "stock --key verifies now", _any(f.path, keys))
        else:
            oracle.expect("key-no", f, "stock --key fails now", _fails(_any(f.path, keys)))
        # this tool
        tool = f.tool
        if tool.verifies and f.logged:
            assert log_key is not None
            for at in (now, now + timedelta(days=3650)):
                oracle.expect("tool-logged", f, f"verify --log-key --identity at {at}", _outcome(
                    f.path, TrustMaterial(log_keys=(log_key,), roots=(pub.root,), crls=pub.crls,
                                          identity=IdentityPolicy(identities=(f.identity,)),
                                          at=at)))
        elif tool.verifies and tool.until is not None:
            oracle.expect("tool-until", f, f"verify --at {tool.until} - 1 h",
                          _any(f.path, stock(tool.until - HOUR, dated=True)))
            oracle.expect("tool-until", f, f"verify --at {tool.until} + 1 h fails",
                          _fails(_any(f.path, stock(tool.until + HOUR, dated=True))))
        elif tool.verifies:
            oracle.expect("tool-renewed", f, "verifies now before its planned renewal",
                          _any(f.path, [*stock(now, dated=False), *keys]))
            keeps = f.keeps_verifiable
            oracle.expect("tool-renewed", f, "the renewal is due before the certificate ends",
                          True if keeps is not None and (cert.until is None
                                                         or keeps.due <= cert.until)
                          else f"planned {keeps.kind if keeps else 'nothing'}, due "
                               f"{keeps.due if keeps else '-'}, certificate until {cert.until}")
        else:
            logged = [TrustMaterial(log_keys=(log_key,), roots=(pub.root,), crls=pub.crls,
                                    at=now)] if log_key else []
            oracle.expect("tool-no", f, "fails now with every published key and certificate",
                          _fails(_any(f.path, [*stock(now, dated=False), *keys, *logged])))


def _ephemeral_certificates(oracle: Oracle, f: Forecast, root: Path, pems: dict[str, str],
                            leaves: dict[str, CertInfo], ephemeral_ca: str | None,
                            now: datetime) -> None:
    """Stock ``--certificate`` with the minutes-long leaf of each logged signature."""
    assert ephemeral_ca is not None
    cert = f.certificate
    for keyid in f.logged:
        leaf = leaves[keyid]

        def at(when: datetime, serial: str = leaf.serial) -> bool | str:
            return _outcome(f.path, TrustMaterial(
                certificate=x509.load_pem_x509_certificate(pems[serial].encode()),
                intermediates=(x509.load_pem_x509_certificate(ephemeral_ca.encode()),),
                roots=(root,), revocation="soft-fail", at=when))

        before, after = leaf.not_after - timedelta(minutes=5), leaf.not_after + HOUR
        if cert.verifies:
            assert cert.until is not None
            oracle.expect("certificate-now", f, "its ephemeral certificate verifies now", at(now))
            before, after = cert.until - timedelta(minutes=5), cert.until + HOUR
        else:
            oracle.expect("certificate-no", f, "its ephemeral certificate fails now",
                          _fails(at(now)))
        oracle.expect("certificate-ephemeral", f, f"its ephemeral certificate verifies at "
                      f"{before}, 5 minutes before it expires", at(before))
        oracle.expect("certificate-ephemeral", f, f"its ephemeral certificate fails at {after}",
                      _fails(at(after)))


def check_proven(oracle: Oracle, data: ReportData, policies: Policies, engine: Engine,
                 later: tuple[timedelta, ...] = (timedelta(days=365), timedelta(days=3650))
                 ) -> None:
    """The "sif-lifecycle, by proven time" column: this tool with the published CA root as TSA
    root (``verify --tsa-roots``), the certificate the claim names (or every published one)
    and the published CRLs (hard-fail: the proven time lies before them). "indefinitely"
    verifies now and at each of ``later``; "until D" (its tokens prove nothing, so it is judged
    as stock tools judge it) verifies at D - 1 h and fails at D + 1 h, without CRLs and with
    ``soft-fail`` as the dated stock checks are; "no" fails now."""
    now = data.generated_at
    pems = certificate_pems(engine)
    for f in data.forecasts:
        h = f.proven
        if h is None or f.status != ImageStatus.PRESENT:
            continue
        policy = policies.get(f.image_set)
        assert policy is not None and policy.publish_directory is not None, f.path
        pub = _Published.read(policy.publish_directory)
        named = (x509.load_pem_x509_certificate(pems[f.proven_by].encode()),) \
            if f.proven_by else ()

        def tool(at: datetime, *, dated: bool = False, path: str = f.path,
                 pub: _Published = pub, named: tuple[x509.Certificate, ...] = named
                 ) -> bool | str:
            return _any(path, [TrustMaterial(
                certificate=c, intermediates=(pub.intermediate,), roots=(pub.root,),
                crls=() if dated else pub.crls, tsa_roots=(pub.root,), at=at,
                revocation="soft-fail" if dated else "hard-fail")
                for c in named or pub.certificates])

        if h.verifies and h.until is None:
            for at in (now, *(now + d for d in later)):
                oracle.expect("proven-indefinitely", f, f"verify --tsa-roots at {at}", tool(at))
        elif h.verifies:
            assert h.until is not None
            oracle.expect("proven-until", f, f"verify --tsa-roots at {h.until} - 1 h",
                          tool(h.until - HOUR, dated=True))
            oracle.expect("proven-until", f, f"verify --tsa-roots fails at {h.until} + 1 h",
                          _fails(tool(h.until + HOUR, dated=True)))
        else:
            oracle.expect("proven-no", f, "verify --tsa-roots fails now", _fails(tool(now)))
