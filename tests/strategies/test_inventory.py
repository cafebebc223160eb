"""track and scan on real files and a real store (SQLite here, PostgreSQL in test_postgres)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from lifecycle.errors import LifecycleError
from lifecycle.globs import compile_glob, covers
from lifecycle.integrity.keys import load_signing_key, no_passphrase
from lifecycle.integrity.sign import DsseSigner, SignOptions, sign_image
from lifecycle.inventory import scan as scan_module
from lifecycle.inventory.scan import EVENTS, IMAGES, SIGNATURES, scan
from lifecycle.sif import SifImage, create_image, json_spec, partition_spec
from lifecycle.store import migrate
from lifecycle.store.db import make_engine, sqlite_url
from tests.keygen import write_pem_pair

NOW = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = sqlite_url(tmp_path / "db.sqlite")
    migrate.upgrade(url)
    return make_engine(url)


def signed(tmp_path: Path, name: str) -> Path:
    (tmp_path / "images").mkdir(exist_ok=True)
    path = create_image(tmp_path / "images" / name,
                        [partition_spec(b"hsqs" + name.encode()), json_spec({"n": name})])
    private, _ = write_pem_pair(tmp_path, "signer", "ed25519")
    sign_image(str(path), DsseSigner((load_signing_key(private, no_passphrase),)), SignOptions())
    return path


def events(engine, kind: str) -> list[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(
            select(IMAGES.c.path).join(EVENTS, EVENTS.c.image_id == IMAGES.c.id)
            .where(EVENTS.c.kind == kind))]


def test_track_records_signatures_and_first_digests(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    path = signed(tmp_path, "a.sif")
    report = scan(engine, [path], NOW, full=True, strict=True)
    assert report.new == [str(path)]
    with engine.connect() as conn:
        row = conn.execute(select(IMAGES).where(IMAGES.c.path == str(path))).mappings().one()
        sigs = conn.execute(select(SIGNATURES)).mappings().all()
    with SifImage.open(path) as image:
        assert row["sif_id"].replace("-", "") == image.header.id.hex()
        data_ids = [d.id for d in image.objects if not d.is_signature]
    assert row["status"] == "present" and row["groups"] == "1"
    assert sorted(json.loads(row["digests"])) == [str(i) for i in data_ids]
    [sig] = sigs
    assert sig["format"] == "dsse" and sig["signer"].startswith("SHA256:")
    assert sig["covered"] == ",".join(map(str, data_ids))
    with pytest.raises(LifecycleError, match="not-sif"):
        (tmp_path / "not-sif.sif").write_bytes(b"hello")
        scan(engine, [tmp_path / "not-sif.sif"], NOW, full=True, strict=True)


def test_unchanged_images_are_not_opened(tmp_path: Path, engine, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    paths = [signed(tmp_path, f"{i}.sif") for i in range(3)]
    assert len(scan(engine, [tmp_path / "images"], NOW).new) == 3
    opened: list[str] = []
    real = scan_module.inspect_image
    monkeypatch.setattr(scan_module, "inspect_image", lambda p: opened.append(p) or real(p))
    report = scan(engine, [tmp_path / "images"], NOW + timedelta(hours=1))
    assert report.unchanged == 3 and opened == []
    os.utime(paths[0], ns=(0, 123))  # a new mtime: re-read, still intact
    report = scan(engine, [tmp_path / "images"], NOW + timedelta(hours=2))
    assert report.changed == [str(paths[0])] and opened == [str(paths[0])]
    assert len(scan(engine, [tmp_path / "images"], NOW, full=True).changed) == 3


def test_tampered_and_removed_images(tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    a, b = signed(tmp_path, "a.sif"), signed(tmp_path, "b.sif")
    scan(engine, [str(tmp_path / "images" / "*.sif")], NOW)
    original = a.read_bytes()
    with SifImage.open(a) as image:
        offset = next(d.offset for d in image.objects if not d.is_signature)
    with a.open("r+b") as handle:
        handle.seek(offset + 4)
        handle.write(b"!")
    b.unlink()
    report = scan(engine, [str(tmp_path / "images" / "*.sif")], NOW + timedelta(days=1))
    assert report.tampered == [str(a)] and report.removed == [str(b)]
    assert events(engine, "tampered") == [str(a)] and events(engine, "removed") == [str(b)]
    with engine.connect() as conn:
        statuses = dict(conn.execute(select(IMAGES.c.path, IMAGES.c.status)).all())
    assert statuses == {str(a): "tampered", str(b): "removed"}  # b is marked, not forgotten
    scan(engine, [str(tmp_path / "images" / "*.sif")], NOW + timedelta(days=2), full=True)
    assert events(engine, "tampered") == [str(a)]  # reported once
    a.write_bytes(original)  # restored: a scan keeps it tampered, an explicit track clears it
    assert scan(engine, [str(a)], NOW + timedelta(days=3)).tampered == [str(a)]
    assert scan(engine, [str(a)], NOW + timedelta(days=3), full=True, strict=True).tampered == []
    with engine.connect() as conn:
        assert conn.execute(select(IMAGES.c.status).where(IMAGES.c.path == str(a))).scalar() \
            == "present"


def test_globs() -> None:
    assert compile_glob("/srv/**/*.sif").match("/srv/a/b/c.sif")
    assert compile_glob("/srv/**/*.sif").match("/srv/c.sif")
    assert not compile_glob("/srv/*.sif").match("/srv/a/c.sif")
    assert compile_glob("/srv/app-[0-9].sif").match("/srv/app-3.sif")
    assert covers("/srv/images", "/srv/images/x/y.sif")
    assert not covers("/srv/images", "/srv/images2/y.sif")
