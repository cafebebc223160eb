"""``/metrics``: a prometheus-client collector that reads the store at each scrape.

Nothing is counted in process memory, so every instance serving one database reports the same
values, and a restart loses nothing. Labels are bounded: a series per CA certificate, per live
key's current certificate, per set, status, action kind, job; never one per image.
:data:`METRICS` is the reference (docs/operations.md is generated from it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from lifecycle.clock import Clock, utc_now
from lifecycle.config import Config
from lifecycle.model.fleet import ActionKind
from lifecycle.model.status import ImageStatus
from lifecycle.service.conditions import Thresholds, rotation_due, verifiable_until
from lifecycle.service.snapshot import BundleCache, Snapshot, take
from lifecycle.store.queue import WorkState

PREFIX = "sif_lifecycle_"



@dataclass(frozen=True)
class MetricSpec:
    name: str
    labels: tuple[str, ...]
    help: str


def _spec(name: str, labels: str, text: str) -> MetricSpec:
    return MetricSpec(PREFIX + name, tuple(labels.split()), text)


METRICS = (
    _spec("certificate_expiry_timestamp_seconds", "role image_set serial fingerprint",
          "notAfter of each CA certificate and of the newest unrevoked certificate of each live "
          "signing key (image_set and fingerprint empty for the CA's own)"),
    _spec("key_rotation_due_timestamp_seconds", "image_set fingerprint state",
          "When each live key of a resign set is due for rotation (active since + key_rotation_days)"),
    _spec("key_expiry_timestamp_seconds", "image_set fingerprint state",
          "Expiry of each live signing key that has one (PGP keys)"),
    _spec("crl_next_update_timestamp_seconds", "issuer", "nextUpdate of the newest CRL of each issuer"),
    _spec("crl_number", "issuer", "Number of the newest CRL of each issuer"),
    _spec("bundle_valid_until_timestamp_seconds", "",
          "valid_until of the newest bundle in [serve] bundle_outbox"),
    _spec("publish_timestamp_seconds", "image_set", "When each set's publish directory was written"),
    _spec("image_set_verifiable_until_timestamp_seconds", "image_set tool",
          "Forecast end of verification of a set: tool=stock (singularity verify --certificate) "
          "or tool=sif-lifecycle (+Inf: no end while renewals succeed)"),
    _spec("images", "image_set status", "Tracked images by set and status (image_set empty: in no set)"),
    _spec("actions", "kind state", "Work items by action kind and state"),
    _spec("queue_depth", "", "Work items waiting or being applied"),
    _spec("queue_oldest_due_timestamp_seconds", "",
          "Due time of the oldest unfinished item that is due (absent: none is due)"),
    _spec("job_last_success_timestamp_seconds", "job_id", "Last successful run of each scheduled job"),
    _spec("job_last_run_timestamp_seconds", "job_id", "Last start of each scheduled job"),
    _spec("job_last_failure_timestamp_seconds", "job_id", "Last failed run of each scheduled job"),
    _spec("job_interval_seconds", "job_id", "Configured interval of each scheduled job"),
    _spec("tlog_entries", "", "Entries in the transparency log kept in the store's database"),
    _spec("tlog_last_entry_timestamp_seconds", "", "Integration time of the newest log entry"),
    _spec("scrape_duration_seconds", "", "How long reading the store for this scrape took"),
)
"""Every series ``/metrics`` exports."""
_BY_NAME = {spec.name.removeprefix(PREFIX): spec for spec in METRICS}


def _family(name: str) -> GaugeMetricFamily:
    spec = _BY_NAME[name]
    return GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))


def families(snap: Snapshot, config: Config, th: Thresholds, seconds: float) -> list[Metric]:
    """The metric families of one snapshot, in :data:`METRICS` order."""
    out: dict[str, GaugeMetricFamily] = {name: _family(name) for name in _BY_NAME}

    def add(name: str, labels: list[str], value: float) -> None:
        out[name].add_metric(labels, value)

    for c in snap.certificates:
        add("certificate_expiry_timestamp_seconds", [c.role, c.image_set, c.serial, c.fingerprint],
            c.not_after.timestamp())
    for k in snap.keys:
        due = rotation_due(k.active_since, k.image_set, th)
        if due is not None:
            add("key_rotation_due_timestamp_seconds", [k.image_set, k.fingerprint, k.state],
                due.timestamp())
        if k.expires_at is not None:
            add("key_expiry_timestamp_seconds", [k.image_set, k.fingerprint, k.state],
                k.expires_at.timestamp())
    for crl in snap.crls:
        add("crl_next_update_timestamp_seconds", [crl.role], crl.next_update.timestamp())
        add("crl_number", [crl.role], crl.number)
    if snap.bundle_valid_until is not None:
        add("bundle_valid_until_timestamp_seconds", [], snap.bundle_valid_until.timestamp())
    for name, at in sorted(snap.published.items()):
        add("publish_timestamp_seconds", [name], at.timestamp())
    for (name, tool), until in sorted(verifiable_until(snap, config).items()):
        add("image_set_verifiable_until_timestamp_seconds", [name, tool], until)
    counts = {(c.image_set, c.status): c.total for c in snap.images}
    sets = {p.name for p in config.policies.image_sets} | {s for s, _ in counts}
    for name in sorted(sets):
        for status in ImageStatus:
            add("images", [name, status.value], counts.get((name, status.value), 0))
    work = {(w.kind, w.state): w.total for w in snap.work}
    for kind in sorted({*ActionKind, *(k for k, _ in work)}):
        for state in WorkState:
            add("actions", [kind, state.value], work.get((kind, state.value), 0))
    add("queue_depth", [], sum(n for (_, state), n in work.items()
                               if state in (WorkState.PENDING, WorkState.CLAIMED)))
    if snap.oldest_due is not None:
        add("queue_oldest_due_timestamp_seconds", [], snap.oldest_due.timestamp())
    runs = {run.job: run for run in snap.jobs}
    for job, interval in sorted(th.jobs.items()):
        add("job_interval_seconds", [job], interval.total_seconds())
        run = runs.get(job)
        if run is not None:
            add("job_last_run_timestamp_seconds", [job], run.last_started.timestamp())
            if run.last_success is not None:
                add("job_last_success_timestamp_seconds", [job], run.last_success.timestamp())
            if run.last_failure is not None:
                add("job_last_failure_timestamp_seconds", [job], run.last_failure.timestamp())
    add("tlog_entries", [], snap.tlog_entries)
    if snap.tlog_newest is not None:
        add("tlog_last_entry_timestamp_seconds", [], snap.tlog_newest.timestamp())
    add("scrape_duration_seconds", [], seconds)
    return list(out.values())


class StoreCollector(Collector):
    """Takes one snapshot per scrape (``collect``); ``describe`` avoids a read at registration."""

    def __init__(self, engine: Engine, config: Config, clock: Clock = utc_now,
                 timer: Callable[[], float] | None = None) -> None:
        import time

        self.engine = engine
        self.config = config
        self.clock = clock
        self.thresholds = Thresholds.of(config)
        self.bundles = BundleCache()
        self.timer = timer or time.perf_counter

    def describe(self) -> list[Metric]:
        return []

    def snapshot(self) -> Snapshot:
        return take(self.engine, self.config, self.clock(), self.bundles)

    def collect(self) -> Iterator[Metric]:
        started = self.timer()
        snap = self.snapshot()
        yield from families(snap, self.config, self.thresholds, self.timer() - started)


class MetricsEndpoint:
    """What the HTTP server calls for GET /metrics: the text exposition format."""

    def __init__(self, collector: StoreCollector) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)

    def __call__(self) -> bytes:
        return bytes(generate_latest(self.registry))


def reference() -> str:
    """The Markdown table of every series (docs/operations.md embeds it; a test keeps it current)."""
    lines = ["| series | labels | meaning |", "|---|---|---|"]
    lines += [f"| `{spec.name}` | {', '.join(f'`{label}`' for label in spec.labels) or '-'} | "
              f"{spec.help} |" for spec in METRICS]
    return "\n".join(lines) + "\n"
