"""SIF verification benchmark (issues 2 and 16): the hardware limit, start-up, every core, memory.

Builds signed images in a temporary directory and measures, in one run, each figure against a
limit measured in the same run (page cache warm, runs of ours and of the limit interleaved):

1. whole-process ``sif-lifecycle verify`` of a 1 GiB image vs ``openssl dgst -sha256`` of the
   same file (openssl/ours, goal >= 0.95), best of ``--repeat``;
2. start-up: ``verify`` of a 1 MiB image and ``--help``, median of 7 each (goal <= 60 ms), next
   to ``python -c pass`` (the interpreter alone);
3. a 2 x 512 MiB two-partition image vs ``openssl dgst`` of its larger partition (goal <= 1.2x);
4. a fleet of 16 x 128 MiB images verified by one ``verify --jobs 2`` vs ``--jobs 1`` (goal
   >= 1.7x);
5. whole-process ``sif-lifecycle sign`` (re-signing: one read pass) of the 1 GiB image vs
   ``openssl dgst`` (ours/openssl, goal <= 1.05);
6. peak RSS of the 1 GiB verify, of the fleet verify with 2 jobs (goal < 100 MiB each);
7. the issue-2 figures, in-process: ``verify_image`` throughput / ``hashlib.sha256`` (goal
   >= 0.85), 8 signature objects vs 1 (goal <= 1.15), bytes signing writes (goal < 64 KiB) and
   that the data section is untouched.

Child processes run the installed ``sif-lifecycle`` entry point of this interpreter's
environment with bytecode caching on (as in an installed package; the first run writes it).

Run from the repository root: ``python benchmarks/verify_throughput.py`` (in the project's
virtualenv). Exit status 0 when every goal is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from lifecycle.integrity.keys import KeySet, VerifierKey
from lifecycle.integrity.sign import DsseSigner, SignOptions, sign_image
from lifecycle.integrity.verify import VerifyOptions, verify_image
from lifecycle.sif import FsType, PartType, SifImage, create_image, partition_spec

MiB = 1 << 20
READ_CHUNK = 8 * MiB
CLI = str(Path(sys.executable).parent / "sif-lifecycle")
REPO = Path(__file__).resolve().parents[1]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def write_payload(path: Path, size: int, seed: int = 2) -> None:
    """``size`` bytes of incompressible-looking data, written chunk by chunk (flat memory)."""
    block = random.Random(seed).randbytes(16 * MiB)
    with path.open("wb") as out:
        for n, start in enumerate(range(0, size, len(block))):
            chunk = block[n % 251 :] + block[: n % 251]  # no two chunks alike
            out.write(chunk[: min(len(chunk), size - start)])


def build(workdir: Path, name: str, sizes: Sequence[int], key: ed25519.Ed25519PrivateKey,
          keep_payloads: bool = False) -> Path:  # fmt: skip
    """A DSSE-signed image with one partition per size (one group)."""
    payloads = []
    for n, size in enumerate(sizes):
        payloads.append(workdir / f"{name}.part{n}")
        write_payload(payloads[-1], size, seed=n + len(name))
    image = workdir / name
    create_image(image, [partition_spec(p, fs_type=FsType.RAW, part_type=PartType.DATA)
                         for p in payloads])  # fmt: skip
    sign_image(str(image), DsseSigner((key,)), SignOptions())
    for payload in payloads if not keep_payloads else ():
        payload.unlink()
    return image


def raw_sha256(path: Path, start: int = 0, end: int | None = None) -> tuple[bytes, int]:
    """SHA-256 of ``path[start:end]`` read in large chunks into one buffer; (digest, bytes)."""
    hasher = hashlib.sha256()
    buffer = bytearray(READ_CHUNK)
    view = memoryview(buffer)
    total = 0
    with path.open("rb", buffering=0) as source:
        source.seek(start)
        limit = (end if end is not None else os.fstat(source.fileno()).st_size) - start
        while total < limit:
            n = source.readinto(view[: min(READ_CHUNK, limit - total)])
            if not n:
                break
            hasher.update(view[:n])
            total += n
    return hasher.digest(), total


CPU_TIMES: dict[str, list[float]] = {}
"""User + system CPU seconds of each timed child, by label: less disturbed by other load than wall."""


def run_cmd(args: Sequence[str | Path], label: str = "", env: dict[str, str] | None = None) -> float:
    """Wall time of one process (stdout discarded); its CPU time is kept under ``label``.

    Run outside the repository: ``python -c`` puts the working directory first on the path.
    """
    start = time.perf_counter()
    child = subprocess.Popen([str(a) for a in args], env=env or ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, cwd=tempfile.gettempdir())  # fmt: skip
    assert child.stderr is not None
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))}: exit {child.returncode}: {errors.decode()}")
    if label:
        CPU_TIMES.setdefault(label, []).append(usage.ru_utime + usage.ru_stime)
    return seconds


def interleaved(commands: dict[str, Callable[[], float]], repeat: int) -> dict[str, list[float]]:
    """Each command ``repeat`` times, alternating, so that load changes hit all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            times[name].append(command())
    return times


def best_time(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_rss(args: Sequence[str | Path]) -> int:
    """Peak RSS in bytes of a command, read by a small launcher through ``RUSAGE_CHILDREN``.

    A child's ``ru_maxrss`` includes the high-water mark of the process it was exec'ed from (here
    the benchmark with its buffers), so a fresh small interpreter starts it and reports.
    """
    launcher = ("import resource, subprocess, sys; "
                "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", launcher, *map(str, args)], env=ENV, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return int(out.stdout.split()[-1]) * 1024  # Linux reports KiB


def line(name: str, value: str, goal: str, ok: bool) -> bool:
    print(f"{name:<58} {value:>30}   goal {goal:<10} {'PASS' if ok else 'FAIL'}", flush=True)
    return ok


def keyset(keys: list[ed25519.Ed25519PrivateKey]) -> KeySet:
    return KeySet(dsse=[VerifierKey(f"key{i}", k.public_key()) for i, k in enumerate(keys)])


def verified(path: Path, keys: KeySet) -> None:
    report = verify_image(str(path), keys, VerifyOptions())
    if not report.ok:
        raise SystemExit(f"benchmark image does not verify: {report.failure_summary()}")


def pem_files(workdir: Path, key: ed25519.Ed25519PrivateKey, name: str) -> tuple[Path, Path]:
    public, private = workdir / f"{name}.pub", workdir / f"{name}.pem"
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))  # fmt: skip
    return public, private


def library_modules(command: Sequence[str | Path]) -> list[str]:
    """The modules outside sif-lifecycle that ``command`` (a ``sif-lifecycle`` run) imports and a
    bare interpreter does not: importing them alone is the start-up floor our code sits on."""
    bare = set(json.loads(subprocess.run(
        [sys.executable, "-c", "import atexit, json, sys; print(json.dumps(sorted(sys.modules)))"],
        env=ENV, check=True, capture_output=True, text=True).stdout))  # fmt: skip
    spy = ("import atexit, json, sys; atexit.register(lambda: print(json.dumps(sorted(sys.modules)), "
           "file=sys.stderr)); sys.argv = sys.argv[1:]; exec(compile(open(sys.argv[0]).read(), "
           "sys.argv[0], 'exec'), {'__name__': '__main__'})")  # fmt: skip
    run = subprocess.run([sys.executable, "-c", spy, *map(str, command)], env=ENV,
                         capture_output=True, text=True)  # fmt: skip
    used = json.loads(run.stderr.strip().splitlines()[-1])
    return [m for m in used if m not in bare and m.split(".")[0] not in {"lifecycle", "__main__"}]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def whole_process(workdir: Path, size: int, repeat: int, compare_with: Path | None) -> list[bool]:
    key = ed25519.Ed25519PrivateKey.generate()
    public, _ = pem_files(workdir, key, "signer")
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("openssl is needed: it is the limit every figure is measured against")
    print(f"building images in {workdir}: {size // MiB} MiB, 2 x {size // 2 // MiB} MiB, "
          f"16 x 128 MiB, 1 MiB ...", flush=True)
    big = build(workdir, "big.sif", [size], key)
    two = build(workdir, "two.sif", [size // 2, size // 2], key, keep_payloads=True)
    larger = max(workdir.glob("two.sif.part*"), key=lambda p: p.stat().st_size)
    fleet = [build(workdir, f"fleet{n:02}.sif", [128 * MiB], key) for n in range(16)]
    small = build(workdir, "small.sif", [MiB], key)
    results = []

    def verify(*images: Path, jobs: int | None = None) -> Callable[[], float]:
        extra = ["--jobs", str(jobs)] if jobs else []
        return lambda: run_cmd([CLI, "verify", "--key", public, *extra, *images])

    def dgst(path: Path) -> Callable[[], float]:
        return lambda: run_cmd([openssl, "dgst", "-sha256", path])

    for image in (small, big, two, *fleet):  # warm the page cache and write the bytecode
        verify(image)()
    times = interleaved({"ours": verify(big), "openssl": dgst(big)}, repeat)
    ours, limit = min(times["ours"]), min(times["openssl"])
    print(f"{size // MiB} MiB: verify {', '.join(f'{t:.3f}' for t in times['ours'])} s; openssl dgst "
          f"{', '.join(f'{t:.3f}' for t in times['openssl'])} s")  # fmt: skip
    results.append(line(f"{size // MiB} MiB verify, whole process: openssl dgst / ours",
                        f"{limit / ours:.3f} ({limit:.3f} s / {ours:.3f} s)", ">= 0.95",
                        limit / ours >= 0.95))  # fmt: skip

    floor = (f"import importlib\nfor m in {library_modules([CLI, 'verify', '--key', public, small])!r}:\n"
             "    try:\n        importlib.import_module(m)\n    except ImportError:\n        pass")
    startup = {"verify": lambda: run_cmd([CLI, "verify", "--key", public, small], "verify"),
               "help": lambda: run_cmd([CLI, "--help"], "help"),
               "python": lambda: run_cmd([sys.executable, "-c", "pass"], "python"),
               "libraries": lambda: run_cmd([sys.executable, "-c", floor], "libraries")}
    if compare_with is not None:  # the same command from another checkout, by `python -c`
        code = ("import sys\ntry:\n    from lifecycle.cli.quick import main\nexcept ImportError:  # older\n"
                "    from lifecycle.cli.main import main as full\n\n    def main():\n"
                "        full(sys.argv[1:])\nmain()")  # the entry point of each checkout
        old_env = {**ENV, "PYTHONPATH": str(compare_with)}
        new_env = {**ENV, "PYTHONPATH": str(REPO)}

        def by_python(label: str, args: list[str | Path], env: dict[str, str]) -> Callable[[], float]:
            return lambda: run_cmd([sys.executable, "-c", code, *args], label, env)

        for which, env in (("old", old_env), ("new", new_env)):
            startup[f"{which} verify"] = by_python(f"{which} verify", ["verify", "--key", public, small], env)
            startup[f"{which} help"] = by_python(f"{which} help", ["--help"], env)
    start = interleaved(startup, 7)
    median = {name: statistics.median(values) for name, values in start.items()}
    cpu = {name: statistics.median(values) for name, values in CPU_TIMES.items()}
    for name in start:
        print(f"start-up {name}: median {ms(median[name])} wall, {ms(cpu[name])} CPU")
    print(f"start-up floor: python -c pass {ms(median['python'])}; the standard and third-party "
          f"modules a verify imports, imported alone (no sif-lifecycle code): {ms(median['libraries'])}")
    results.append(line("start-up: verify of a 1 MiB image, median of 7", ms(median["verify"])
                        + f" (libraries alone {ms(median['libraries'])})", "<= 60 ms",
                        median["verify"] <= 0.060))  # fmt: skip
    results.append(line("start-up: --help, median of 7", ms(median["help"]), "<= 60 ms",
                        median["help"] <= 0.060))  # fmt: skip

    times = interleaved({"ours": verify(two), "openssl": dgst(larger)}, repeat)
    ours, limit = min(times["ours"]), min(times["openssl"])
    results.append(line(f"2 x {size // 2 // MiB} MiB image / openssl dgst of one partition",
                        f"{ours / limit:.3f}x ({ours:.3f} s / {limit:.3f} s)", "<= 1.2x",
                        ours / limit <= 1.2))  # fmt: skip

    times = interleaved({"one": verify(*fleet, jobs=1), "two": verify(*fleet, jobs=2)}, repeat)
    one, two_jobs = min(times["one"]), min(times["two"])
    results.append(line("fleet of 16 x 128 MiB: verify --jobs 2 vs --jobs 1",
                        f"{one / two_jobs:.2f}x ({one:.3f} s / {two_jobs:.3f} s)", ">= 1.7x",
                        one / two_jobs >= 1.7))  # fmt: skip

    signers = [pem_files(workdir, ed25519.Ed25519PrivateKey.generate(), f"new{n}")[1]
               for n in range(repeat)]  # fmt: skip
    sign_times, dgst_times = [], []
    for pem in signers:  # interleaved; each run adds one key's signature to the group's envelope
        sign_times.append(run_cmd([CLI, "sign", "--key", pem, big]))
        dgst_times.append(dgst(big)())
    ours, limit = min(sign_times), min(dgst_times)
    results.append(line(f"{size // MiB} MiB re-sign, whole process: ours / openssl dgst",
                        f"{ours / limit:.3f} ({ours:.3f} s / {limit:.3f} s)", "<= 1.05",
                        ours / limit <= 1.05))  # fmt: skip

    rss_big = peak_rss([CLI, "verify", "--key", public, big])
    rss_fleet = peak_rss([CLI, "verify", "--key", public, "--jobs", "2", *fleet])
    results.append(line(f"peak RSS: {size // MiB} MiB verify", f"{rss_big / MiB:.1f} MiB", "< 100 MiB",
                        rss_big < 100 * MiB))  # fmt: skip
    results.append(line("peak RSS: fleet verify, 2 jobs", f"{rss_fleet / MiB:.1f} MiB", "< 100 MiB",
                        rss_fleet < 100 * MiB))  # fmt: skip
    for path in (big, two, *fleet, small, *workdir.glob("two.sif.part*")):
        path.unlink()
    return results


def in_process(workdir: Path, size: int, repeat: int) -> list[bool]:
    """The issue-2 figures: throughput in process, many signatures, bytes written."""
    keys = [ed25519.Ed25519PrivateKey.generate() for _ in range(8)]
    payload, image = workdir / "payload.bin", workdir / "image.sif"
    write_payload(payload, size)
    create_image(image, [partition_spec(payload, fs_type=FsType.RAW, part_type=PartType.DATA)])
    payload.unlink()
    with SifImage.open(image) as sif:
        data_start = sif.header.data_offset
    before_size = image.stat().st_size
    before_digest, _ = raw_sha256(image, data_start)  # also warms the page cache
    with image.open("rb") as source:
        before_table = source.read(data_start)
    sign_image(str(image), DsseSigner((keys[0],)), SignOptions(separate_object=True))
    with image.open("rb") as source:
        after_table = source.read(data_start)
    changed_in_place = sum(a != b for a, b in zip(before_table, after_table, strict=True))
    written = image.stat().st_size - before_size + changed_in_place
    untouched = raw_sha256(image, data_start, before_size)[0] == before_digest
    one_key = keyset(keys[:1])
    raw_seconds = best_time(lambda: raw_sha256(image), repeat)
    one_seconds = best_time(lambda: verified(image, one_key), repeat)
    raw_rate, verify_rate = image.stat().st_size / raw_seconds, size / one_seconds
    for key in keys[1:]:
        sign_image(str(image), DsseSigner((key,)), SignOptions(separate_object=True))
    with SifImage.open(image) as sif:
        signatures = sum(1 for d in sif.objects if d.is_signature)
    all_keys = keyset(keys)
    eight_seconds = best_time(lambda: verified(image, all_keys), repeat)
    image.unlink()
    return [
        line("in process: verify_image / hashlib.sha256 throughput",
             f"{verify_rate / raw_rate:.3f} ({verify_rate / MiB:.0f} vs {raw_rate / MiB:.0f} MiB/s)",
             ">= 0.85", verify_rate / raw_rate >= 0.85),
        line(f"in process: verify time, {signatures} signature objects / 1",
             f"{eight_seconds / one_seconds:.3f}", "<= 1.15",
             signatures == 8 and eight_seconds / one_seconds <= 1.15),
        line("bytes signing adds or changes in the image", f"{written} B", "< 64 KiB", written < 64 * 1024),
        line("data section untouched by signing", "yes" if untouched else "NO", "yes", untouched),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="large image size (default 1024)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (best kept)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--compare-with", type=Path, default=None,
                        help="another checkout (e.g. `git archive` of main): its start-up, same run")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs; load average {load:.2f} before the run", flush=True)
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="sif-bench-") as tmp:
        ok = whole_process(Path(tmp), args.size_mib * MiB, args.repeat, args.compare_with)
        ok += in_process(Path(tmp), args.size_mib * MiB, min(args.repeat, 3))
    print(f"load average {os.getloadavg()[0]:.2f} after the run")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
