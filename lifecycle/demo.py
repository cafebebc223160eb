"""``sif-lifecycle demo``: the whole job on the embedded default, three simulated years in a minute.

It builds a workspace (config with one image set per strategy, SQLite store, CA, transparency
log, real SIF images), then drives the same planner and applier the service runs with a
simulated clock that jumps from one action window to the next, so three years take seconds.
The simulation starts three years ago and ends now: everything it leaves (certificates, CRLs,
the bundle) is current, and the next commands it prints work against the real clock.
Nothing here is demo-only logic except the workspace and the clock: planning, applying,
exporting and verifying are the product's own functions and commands.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from lifecycle.bundles import export
from lifecycle.bundles.archive import read_bundle
from lifecycle.bundles.exporter import options_for
from lifecycle.clock import utc_now
from lifecycle.config import Config, KeyType, Strategy, load_config
from lifecycle.errors import LifecycleError
from lifecycle.integrity.keys import PgpSigningKey
from lifecycle.integrity.sign import DsseSigner, PgpSigner, Signer, SignOptions, sign_image
from lifecycle.inventory.fleet import load_state
from lifecycle.inventory.scan import scan
from lifecycle.model.fleet import Action, ActionKind, ApplyStatus, day
from lifecycle.model.key_state import KeyState
from lifecycle.pki.keys import KeyAlgorithm
from lifecycle.reports import write_report
from lifecycle.service.transparency import config_log_client, create_log, open_log
from lifecycle.sif import create_image, deffile_spec, json_spec, partition_spec
from lifecycle.store import migrate
from lifecycle.store.ca_service import CaService
from lifecycle.store.db import make_engine
from lifecycle.store.key_service import KeyService
from lifecycle.strategies.apply import ApplyContext, ApplyResult
from lifecycle.strategies.due import run_due
from lifecycle.strategies.plan import plan

MARKER = ".sif-lifecycle-demo"
YEARS = 3
IDENTITY = "https://ci.demo.example/pipelines/main"
LOG_ORIGIN = "demo.sif-lifecycle.example/log"
CONFIG = f"""\
# Written by `sif-lifecycle demo`: one image set per strategy.
[database]
path = "lifecycle.db"

[keys]
directory = "keys"

[tlog]
origin = "{LOG_ORIGIN}"
key_file = "tlog-key.json"

[[image_sets]]
name = "base"
paths = ["images/base/*.sif"]
strategy = "reissue"            # one long-lived key; certificates re-issued every 60 days
certificate_lifetime_days = 90
crl_lifetime_days = 30
publish_directory = "publish/base"

[[image_sets]]
name = "apps"
paths = ["images/apps/*.sif"]
strategy = "resign"             # the key rotates yearly; images re-signed, old signature dropped
certificate_lifetime_days = 90
key_rotation_days = 365
overlap_days = 30
crl_lifetime_days = 30
publish_directory = "publish/apps"

[[image_sets]]
name = "ci"
paths = ["images/ci/*.sif"]
strategy = "ephemeral"          # no key: a 10-minute certificate per signing, logged
identity = "{IDENTITY}"
certificate_lifetime_minutes = 10
crl_lifetime_days = 30          # the root CRL covers the ephemeral CA
publish_directory = "publish/ci"

[[image_sets]]
name = "legacy"
paths = ["images/legacy/*.sif"]
strategy = "reissue"            # an OpenPGP key, as `singularity sign` uses: expiry extended
key_type = "pgp"
certificate_lifetime_days = 365
crl_lifetime_days = 30
publish_directory = "publish/legacy"
"""
KEYSERVER = """
[keyserver]
urls = [{url}]                  # every PGP key change is pushed here (HKP /pks/add)
"""
# (set, image name, days after the start it appears)
IMAGES = (("base", "base-os", 0), ("base", "base-hpc", 0), ("apps", "app-web", 0),
          ("apps", "app-solver", 400), ("ci", "ci-tool", 0), ("ci", "ci-nightly", 700),
          ("legacy", "legacy-tool", 0))


class DemoError(LifecycleError):
    """The workspace cannot be used (exit 2)."""


@dataclass
class Verified:
    image: Path
    image_set: str
    ok: bool
    command: list[str]
    output: str


@dataclass
class DemoResult:
    workspace: Path
    started: datetime
    ended: datetime
    squashfs: str
    """``mksquashfs`` or ``python`` (placeholder partitions)."""
    images: dict[str, list[Path]] = field(default_factory=dict)
    history: list[tuple[datetime, Action, ApplyResult]] = field(default_factory=list)
    verified: list[Verified] = field(default_factory=list)
    bundle: Path | None = None
    report: Path | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for _, _, r in self.history) and all(v.ok for v in self.verified)


def prepare_workspace(workspace: Path) -> None:
    """Recreate our own workspace; refuse anything else that is not empty."""
    if workspace.exists():
        if not workspace.is_dir():
            raise DemoError("exists and is not a directory; pass another --workspace",
                            path=workspace)
        if not (workspace / MARKER).exists() and any(workspace.iterdir()):
            raise DemoError("exists and is not a demo workspace; refusing to touch it",
                            path=workspace, hint="pass another --workspace")
        shutil.rmtree(workspace)
    workspace.mkdir(parents=True)
    (workspace / MARKER).write_text("created by sif-lifecycle demo; it recreates this "
                                    "directory on every run\n", encoding="utf-8")


class Clock:
    """The simulated time every component reads (CA, key store, log, planner)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def _squashfs(workspace: Path, name: str) -> tuple[bytes, str]:
    """A real squashfs image of a tiny root filesystem, or (without squashfs-tools) bytes
    that only carry the squashfs magic: enough for signing, not for running."""
    rootfs = workspace / "build" / name
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "hostname").write_text(f"{name}\n", encoding="utf-8")
    (rootfs / "etc" / "os-release").write_text(f'NAME="{name}"\nID=demo\n', encoding="utf-8")
    tool = shutil.which("mksquashfs")
    if tool is None:
        return b"hsqs" + name.encode().ljust(4092, b"\0"), "python"
    out = workspace / "build" / f"{name}.sqfs"
    done = subprocess.run([tool, str(rootfs), str(out), "-quiet", "-noappend", "-all-root",
                           "-no-progress"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DemoError(f"mksquashfs failed: {done.stderr.strip() or done.stdout.strip()}",
                        path=out)
    return out.read_bytes(), "mksquashfs"


class Demo:
    """One run: the workspace, its services on the simulated clock, and what happened."""

    def __init__(self, workspace: Path, out: Callable[[str], None],
                 observe: Callable[[datetime], None] | None = None,
                 keyserver: str | None = None) -> None:
        self.workspace = workspace.resolve()
        self.out = out
        self.observe = observe
        """Called at each simulated time once everything due has been applied (tests check
        the report's claims there)."""
        self.keyserver = keyserver
        end = utc_now().replace(microsecond=0)
        self.clock = Clock(end - timedelta(days=365 * YEARS))
        self.end = end
        self.passphrase = secrets.token_urlsafe(24).encode()
        self.result = DemoResult(self.workspace, self.clock.now, end, "")
        self.config: Config
        self.ca: CaService
        self.ctx: ApplyContext

    # -- set-up -------------------------------------------------------------------------

    def setup(self) -> None:
        ws = self.workspace
        prepare_workspace(ws)
        _write_private(ws / "passphrase.txt", self.passphrase.decode() + "\n")
        text = CONFIG + (KEYSERVER.format(url=json.dumps(self.keyserver))
                         if self.keyserver else "")
        (ws / "lifecycle.toml").write_text(text, encoding="utf-8")
        self.config = load_config(ws / "lifecycle.toml")
        migrate.upgrade(self.config.database_url)
        keys = KeyService(make_engine(self.config.database_url), self.config.key_directory,
                          clock=self.clock)
        self.ca = CaService(keys, self.passphrase, self.config.ca)
        self.ca.init(root_algorithm=KeyAlgorithm.P256, intermediate_algorithm=KeyAlgorithm.P256,
                     root_lifetime=timedelta(days=3650), intermediate_lifetime=timedelta(days=1825),
                     common_name="sif-lifecycle demo")
        assert self.config.tlog is not None
        vkey = create_log(self.config.database_url, LOG_ORIGIN, self.config.tlog.key_file,
                          self.passphrase)
        (ws / "log.vkey").write_text(vkey + "\n", encoding="utf-8")
        self.ctx = ApplyContext(self.ca.engine, self.config.policies, self.ca,
                                config_log_client(self.config, self.passphrase))
        self.out(f"workspace {ws}: SQLite store lifecycle.db, CA, transparency log "
                 f"{LOG_ORIGIN}, four image sets (reissue, resign, ephemeral; reissue with a "
                 "PGP key" + (f" published to {self.keyserver})" if self.keyserver else ")"))

    def add_image(self, image_set: str, name: str) -> Path:
        """Build an image; a release pipeline signs key-based sets' images with the active key
        (ephemeral images arrive unsigned: the service signs them); then it is tracked."""
        payload, how = _squashfs(self.workspace, name)
        self.result.squashfs = how
        path = self.workspace / "images" / image_set / f"{name}.sif"
        path.parent.mkdir(parents=True, exist_ok=True)
        create_image(path, [deffile_spec(f"Bootstrap: scratch\n# {name}\n".encode()),
                            partition_spec(payload),
                            json_spec({"name": name, "built": self.clock.now.isoformat()})])
        policy = self.config.policies.get(image_set)
        assert policy is not None
        if policy.strategy is not Strategy.EPHEMERAL:
            active = next(k for k in load_state(self.ca.engine, self.clock.now).keys
                          if k.image_set == image_set and k.state == KeyState.ACTIVE)
            row = self.ca.keys.get(active.fingerprint)
            if policy.key_type is KeyType.PGP:  # as `singularity sign` does, at that time
                signer: Signer = PgpSigner(PgpSigningKey(self.ca.keys.pgp_key(row),
                                                         self.passphrase, "store"))
            else:
                signer = DsseSigner((self.ca.keys.private_key(row, self.passphrase),))
            sign_image(str(path), signer, SignOptions(signing_time=self.clock.now))
        scan(self.ca.engine, [str(path)], self.clock.now, full=True, strict=True,
             policies=self.config.policies)
        self.result.images.setdefault(image_set, []).append(path)
        how_signed = "unsigned" if policy.strategy is Strategy.EPHEMERAL else "signed by the release pipeline"
        self.log_line(self.clock.now, "new image",
                      f"{path.relative_to(self.workspace)} ({how_signed})")
        return path

    # -- the simulation ----------------------------------------------------------------------

    def log_line(self, at: datetime, what: str, text: str) -> None:
        self.out(f"  {day(at)}  {what:<15} {text}")

    def _record(self, action: Action, result: ApplyResult) -> None:
        self.result.history.append((self.clock.now, action, result))
        if action.kind in (ActionKind.CRL_REFRESH, ActionKind.PUBLISH) and result.ok:
            return  # routine: counted per year, not listed
        status = "" if result.status == ApplyStatus.DONE else f"[{result.status}: {result.detail}] "
        reason = action.reason.replace(f"{self.workspace}/", "")
        self.log_line(self.clock.now, action.kind, status + reason)

    def simulate(self) -> None:
        start = self.clock.now
        arrivals = sorted((start + timedelta(days=d), s, n) for s, n, d in IMAGES)
        year_end = start + timedelta(days=365)
        self.out(f"simulating {YEARS} years, {day(start)} to {day(self.end)} (each line: "
                 "simulated date, action, reason)")
        while True:
            run_due(self.ctx, self.clock.now, self._record)  # first: provisions the sets' keys
            if arrivals and arrivals[0][0] <= self.clock.now:
                while arrivals and arrivals[0][0] <= self.clock.now:
                    _, image_set, name = arrivals.pop(0)
                    self.add_image(image_set, name)
                run_due(self.ctx, self.clock.now, self._record)
            if self.observe is not None:
                self.observe(self.clock.now)
            while year_end <= self.clock.now:  # the last year ends exactly at self.end
                self._year_summary(year_end)
                year_end += timedelta(days=365)
            if self.clock.now >= self.end:
                return
            state = load_state(self.ca.engine, self.clock.now,
                               self.config.policies.publish_directories())
            upcoming = [a.not_before for a in plan(state, self.config.policies, self.clock.now)
                        if a.not_before > self.clock.now]
            self.clock.now = min([self.end, *upcoming, *(at for at, _, _ in arrivals[:1])])

    def _year_summary(self, year_end: datetime) -> None:
        since = year_end - timedelta(days=365)
        routine = Counter(a.kind for at, a, r in self.result.history
                          if since <= at < year_end and r.status == ApplyStatus.DONE
                          and a.kind in (ActionKind.CRL_REFRESH, ActionKind.PUBLISH))
        self.out(f"  -- year to {day(year_end)}: also {routine[ActionKind.CRL_REFRESH]} CRL "
                 f"refreshes and {routine[ActionKind.PUBLISH]} publications (routine, not listed)")

    # -- the end: report, bundle, offline verification -------------------------------------

    def export_bundle(self) -> Path:
        assert self.config.tlog is not None
        log = open_log(self.config.database_url, self.config.tlog.key_file, self.passphrase)
        log.clock = self.clock
        out = self.workspace / "bundle.tar.gz"
        report = export(self.ca, out, log=log, now=self.clock.now,
                        options=options_for(self.config))
        unpacked = self.workspace / "bundle"
        for name, data in read_bundle(out).items():  # names checked: nothing escapes bundle/
            (unpacked / name).parent.mkdir(parents=True, exist_ok=True)
            (unpacked / name).write_bytes(data)
        self.out(f"bundle {out.name}: {report.manifest.file_count} files, valid until "
                 f"{report.manifest.valid_until.isoformat()}, signed by bundle key "
                 f"{report.bundle_keyid} (unpacked in bundle/ for the long-term checks)")
        for warning in report.warnings:
            self.out(f"  warning: {warning}")
        self.result.bundle = out
        return out

    def verify_command(self, image: Path, image_set: str) -> list[str]:
        """The offline check of ``image`` against the bundle (what the next steps print)."""
        del image_set  # every kind verifies with the bundle alone (its log and identities)
        return ["sif-lifecycle", "verify", "--bundle", "bundle.tar.gz",
                str(image.relative_to(self.workspace))]

    def verify_all(self) -> None:
        """Each image with the CLI, as an air-gapped verifier would: a fresh process with its
        own trust store, the bundle and nothing else."""
        env = {**os.environ, "SIF_LIFECYCLE_TRUST_STORE": str(self.workspace / "offline-trust")}
        env.pop("SIF_LIFECYCLE_CONFIG", None)
        for image_set, paths in self.result.images.items():
            for path in paths:
                command = self.verify_command(path, image_set)
                args = [sys.executable, "-m", "lifecycle.cli.main", *command[1:]]
                done = subprocess.run(args, cwd=self.workspace, capture_output=True, text=True,
                                      env=env, check=False)
                verified = Verified(path, image_set, done.returncode == 0, command,
                                    (done.stdout + done.stderr).strip())
                self.result.verified.append(verified)
                lines = (done.stdout if verified.ok else done.stderr).strip().splitlines()
                last = lines[-1] if lines else ""
                self.out(f"  {'ok  ' if verified.ok else 'FAIL'} {image_set:<5} "
                         f"{path.relative_to(self.workspace)}: {last}")

    def run(self) -> DemoResult:
        began = time.monotonic()
        self.setup()
        self.simulate()
        self.out("exporting the verification bundle")
        self.export_bundle()
        self.out("verifying every image offline against the bundle")
        self.verify_all()
        self.out("writing the report")
        _write_action_log(self.result, self.workspace)
        self.result.report = write_report(self.ca.engine, self.config, self.clock.now,
                                          self.workspace, verify_images=True)[0]
        self.result.seconds = time.monotonic() - began
        return self.result


def _write_action_log(result: DemoResult, workspace: Path) -> Path:
    """``actions.md``: what the three simulated years did, and each image's offline verification."""
    path = workspace / "actions.md"
    lines = [f"# sif-lifecycle demo: {day(result.started)} to {day(result.ended)}", "",
             "## Images", "", "| image | set | verified offline against the bundle |",
             "|---|---|---|"]
    for verified in result.verified:
        lines.append(f"| {verified.image.relative_to(workspace)} | {verified.image_set} | "
                     f"{'yes' if verified.ok else 'NO'}: `{' '.join(verified.command)}` |")
    kinds = Counter((a.image_set or "-", a.kind, r.status) for _, a, r in result.history)
    lines += ["", "## Actions", "", "| set | action | status | count |", "|---|---|---|---|"]
    lines += [f"| {s} | {k} | {st} | {n} |" for (s, k, st), n in sorted(kinds.items())]
    lines += ["", "## Action log", ""]
    lines += [f"- {day(at)} `{a.kind}` {r.status}: {a.reason}" for at, a, r in result.history
              if a.kind not in (ActionKind.CRL_REFRESH, ActionKind.PUBLISH)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def next_steps(result: DemoResult) -> list[str]:
    """Where each artefact is and the commands to try next (run from the workspace)."""
    ws = result.workspace
    first = next((v for v in result.verified if v.image_set == "ci"), None)
    lines = [
        f"Workspace: {ws}",
        "  lifecycle.toml, lifecycle.db   configuration (three image sets) and store (SQLite)",
        "  keys/, passphrase.txt          private keys, encrypted with the passphrase (0600)",
        "  images/{base,apps,ci}/         the images (squashfs partitions by "
        f"{result.squashfs})",
        "  publish/<set>/                 trust material each set publishes",
        "  log.vkey                       the transparency log's verifier key",
        f"  {(result.bundle or ws).name:<30} the verification bundle (unpacked in bundle/)",
        f"  {(result.report or ws).name:<30} the report",
        "Next:",
        f"  cd {ws}",
        "  export SIF_LIFECYCLE_CONFIG=$PWD/lifecycle.toml SIF_LIFECYCLE_PASSPHRASE=$(cat "
        "passphrase.txt) SIF_LIFECYCLE_TRUST_STORE=$PWD/offline-trust",
        "  sif-lifecycle images",
        "  sif-lifecycle plan",
        "  sif-lifecycle verify --bundle bundle.tar.gz images/base/base-os.sif",
    ]
    if first is not None:
        lines.append("  " + " ".join(first.command))
    lines += ["  sif-lifecycle tlog checkpoint", "  sif-lifecycle --help",
              "Docs: docs/quickstart.md"]
    return lines


def run_demo(workspace: Path, out: Callable[[str], None] = print, *,
             keyserver: str | None = None) -> DemoResult:
    """``keyserver``: an HKP URL the PGP set's key changes are published to."""
    return Demo(workspace, out, keyserver=keyserver).run()
