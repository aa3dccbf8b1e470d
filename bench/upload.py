"""Upload throughput of a large GGUF file through the API, and the server's memory meanwhile.

Starts `archipel serve` on a free port with a temp data dir under /tmp (embedded PostgreSQL and
Redis), creates the first admin, generates a valid GGUF file of `--size-mb` MiB of tensor data
in the same temp dir (the `gguf` package; tensors of 64 MiB, never the whole file in memory),
then measures, each figure next to a baseline measured in the same run on the same disk:

- Throughput: the file is sent with the resumable-upload protocol: `POST /api/models/uploads`
  (with its sha256, which the server checks), one `PATCH` streaming the whole file (httpx, a
  generator of `--chunk-mb` chunks, with Content-Length), then `POST .../complete` (digest
  check, GGUF header parse, move into the blob store, model recorded). Baseline: a plain copy
  of the same file on the same disk (`shutil.copyfile`), made twice before each upload and once
  after the last, the median taken (the disk of a shared machine varies). Both are timed with
  `os.sync()` after them (the bytes on disk) and without it (the page cache); each phase starts
  after a sync. Target: upload + complete + sync >= 0.5 of the copy + sync's MB/s. With `--piece-mb`
  > 0 the file is also sent in PATCHes of that size (how a client resumes), completed under
  another tag (the same content: the server drops its partial file, so that sync is empty).
- Server memory: the RSS of the `archipel serve` process (and, apart, of it with its embedded
  Redis, its child, and PostgreSQL, which runs detached) sampled every `--sample-ms` ms in a
  thread. Baseline: the RSS just before the upload. Target: peak growth during an upload < 100 MB.

CPU time during the PATCHes is printed for each upload, to tell where time goes: the server's
event-loop thread (HTTP parsing, middleware, the endpoint's loop), its other threads (the
`to_thread` writes: file writes and sha256), and this client.
Figures are printed, never asserted; the exit code is 0 unless something fails (or the disk has
less than 3x the file size free: the file, the stored blob and a second upload's partial file).

    .venv/bin/python bench/upload.py [--size-mb 2048] [--chunk-mb 8] [--piece-mb 256]
                                     [--sample-ms 50] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from gguf import GGUFReader, GGUFWriter, LlamaFileType

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.serve import ServeProcess, running  # noqa: E402
from tests.e2e.admin_client import AdminClient  # noqa: E402

MIB = 1 << 20
MB = 1_000_000
TARGET_RATIO = 0.5
TARGET_GROWTH_MB = 100.0
TENSOR_MIB = 64  # the generated file's tensors; one is in memory at a time
EMBEDDING = 4096  # columns of each generated tensor
FREE_FACTOR = 3  # the file, the stored blob, and the partial file of the second upload
MODEL_NAME = "bench-upload"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=2048, help="MiB of tensor data")
    parser.add_argument("--chunk-mb", type=int, default=8, help="MiB per chunk the client sends")
    parser.add_argument(
        "--piece-mb", type=int, default=256, help="MiB per PATCH of the chunked upload (0: none)"
    )
    parser.add_argument("--sample-ms", type=float, default=50, help="RSS sampling period")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.size_mb < 1 or args.chunk_mb < 1 or args.piece_mb < 0 or args.sample_ms <= 0:
        parser.error("--size-mb and --chunk-mb must be >= 1, --piece-mb >= 0, --sample-ms > 0")
    return args


def mb_per_s(size: int, seconds: float) -> float:
    return size / MB / seconds if seconds > 0 else float("inf")


# --- the pool ---------------------------------------------------------------------------------


@contextlib.contextmanager
def running_pool(base: Path) -> Iterator[ServeProcess]:
    with running(base) as pool:
        yield pool


# --- the file ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    path: Path
    size: int
    digest: str
    tensors: int
    parameters: int
    seconds: float


def generate_gguf(path: Path, data_mib: int) -> Generated:
    """A valid GGUF file with `data_mib` MiB of float32 tensors, one tensor in memory at once."""
    started = time.perf_counter()
    sizes = [TENSOR_MIB] * (data_mib // TENSOR_MIB) + (
        [data_mib % TENSOR_MIB] if data_mib % TENSOR_MIB else []
    )
    rows = [mib * MIB // 4 // EMBEDDING for mib in sizes]
    writer = GGUFWriter(str(path), arch="llama")
    writer.add_name("bench upload")
    writer.add_block_count(len(rows))
    writer.add_context_length(4096)
    writer.add_embedding_length(EMBEDDING)
    writer.add_file_type(int(LlamaFileType.ALL_F32))
    writer.add_tokenizer_model("llama")
    writer.add_chat_template("{{ .Prompt }}")
    for i, n in enumerate(rows):
        writer.add_tensor_info(
            f"blk.{i}.ffn_up.weight", (n, EMBEDDING), np.dtype(np.float32), n * EMBEDDING * 4
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    rng = np.random.default_rng(2048)
    block = rng.standard_normal(TENSOR_MIB * MIB // 4, dtype=np.float32)
    for i, n in enumerate(rows):
        # Distinct content per tensor without drawing 2 GB of random numbers.
        tensor = block[: n * EMBEDDING].reshape(n, EMBEDDING) + np.float32(i)
        writer.write_tensor_data(tensor)
        del tensor
    writer.close()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 * MIB):
            digest.update(chunk)
    reader = GGUFReader(str(path))  # what the server will parse: check it reads back
    parameters = int(sum(int(t.n_elements) for t in reader.tensors))
    if len(reader.tensors) != len(rows) or parameters != sum(rows) * EMBEDDING:
        raise RuntimeError("the generated GGUF file does not read back as written")
    del reader
    return Generated(
        path,
        path.stat().st_size,
        f"sha256:{digest.hexdigest()}",
        len(rows),
        parameters,
        time.perf_counter() - started,
    )


# --- memory -----------------------------------------------------------------------------------


class RssSampler:
    """RSS of the server process, and of it with its embedded servers, every `period` seconds."""

    REFRESH_S = 1.0  # how often the list of embedded processes (PostgreSQL backends) is renewed

    def __init__(self, pool: ServeProcess, period: float) -> None:
        self._pool = pool
        self._server = pool.server()
        self._children = pool.embedded()
        self._listed = time.perf_counter()
        self._period = period
        self._lock = threading.Lock()
        self.samples: list[tuple[float, int, int]] = []  # (time, server rss, server + children)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> tuple[float, int, int]:
        own = self._server.memory_info().rss
        total = own
        for child in self._children:
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return time.perf_counter(), own, total

    def _run(self) -> None:
        while not self._stop.is_set():
            if time.perf_counter() - self._listed > self.REFRESH_S:
                with contextlib.suppress(psutil.Error):
                    self._children = self._pool.embedded()
                self._listed = time.perf_counter()
            sample = self._sample()
            with self._lock:
                self.samples.append(sample)
            self._stop.wait(self._period)

    def now(self) -> tuple[int, int]:
        _, own, total = self._sample()
        return own, total

    def window(self, start: float, end: float) -> list[tuple[float, int, int]]:
        with self._lock:
            return [s for s in self.samples if start <= s[0] <= end]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def settle_rss(sampler: RssSampler, seconds: float = 1.0) -> tuple[int, int]:
    """The RSS before an upload: the last of a quiet second's samples."""
    time.sleep(seconds)
    return sampler.now()


# --- the phases -------------------------------------------------------------------------------


def timed_sync() -> float:
    start = time.perf_counter()
    os.sync()
    return time.perf_counter() - start


def copy_baseline(source: Path) -> dict[str, float]:
    """One plain copy of the file on the same disk: the copy, then the sync, timed apart."""
    target = source.with_name("copy.gguf")
    timed_sync()  # start with no dirty pages from earlier phases
    start = time.perf_counter()
    shutil.copyfile(source, target)
    copy_s = time.perf_counter() - start
    sync_s = timed_sync()
    target.unlink()
    timed_sync()
    # The same copy through user space (what any receiver of bytes must do: read, write),
    # to tell the kernel's in-place copy (copy_file_range) from the cost of writing pages.
    start = time.perf_counter()
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(8 << 20):
            writer.write(chunk)
    user_s = time.perf_counter() - start
    target.unlink()
    timed_sync()
    return {"copy_s": copy_s, "sync_s": sync_s, "total_s": copy_s + sync_s, "user_s": user_s}


def file_chunks(path: Path, start: int, length: int, chunk: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        left = length
        while left > 0:
            data = handle.read(min(chunk, left))
            if not data:
                raise RuntimeError(f"{path} ended {left} bytes early")
            left -= len(data)
            yield data


class ThreadCpu:
    """CPU seconds of the server's threads: the event loop's (the main thread) and the others."""

    def __init__(self, server: psutil.Process) -> None:
        self._server = server
        self._start = self._read()

    def _read(self) -> dict[int, float]:
        return {t.id: t.user_time + t.system_time for t in self._server.threads()}

    def used(self) -> tuple[float, float]:
        end = self._read()
        spent = {tid: cpu - self._start.get(tid, 0.0) for tid, cpu in end.items()}
        loop = spent.pop(self._server.pid, 0.0)
        # Threads that ended meanwhile are not counted: to_thread's workers stay alive.
        return loop, sum(spent.values())


class Uploader:
    def __init__(self, admin: AdminClient, args: argparse.Namespace) -> None:
        self.admin = admin
        self.args = args
        self.http = admin.http

    def _check(self, response: httpx.Response, expected: int, what: str) -> dict[str, Any]:
        if response.status_code != expected:
            raise RuntimeError(f"{what}: HTTP {response.status_code} {response.text[:500]}")
        return dict(response.json())

    def patch(self, upload_id: str, file: Generated, offset: int, length: int) -> int:
        response = self.http.patch(
            f"/api/models/uploads/{upload_id}",
            content=file_chunks(file.path, offset, length, self.args.chunk_mb * MIB),
            headers={
                **self.admin.headers(),
                "Upload-Offset": str(offset),
                "Content-Type": "application/octet-stream",
                "Content-Length": str(length),  # not chunked transfer encoding
            },
            timeout=httpx.Timeout(30, read=600, write=600),
        )
        return int(self._check(response, 200, "PATCH")["offset"])

    def upload(self, file: Generated, tag: str, piece: int, pool: ServeProcess) -> dict[str, Any]:
        """Start, send (in pieces of `piece` bytes, or 0: one PATCH), complete; timed."""
        start = time.perf_counter()
        started = self._check(
            self.admin.post(
                "/api/models/uploads",
                {"filename": file.path.name, "size": file.size, "sha256": file.digest},
            ),
            201,
            "start upload",
        )
        upload_id, offset = started["id"], int(started["offset"])
        server_cpu, client_cpu = ThreadCpu(pool.server()), time.process_time()
        patch_start = time.perf_counter()
        patches = 0
        while offset < file.size:
            length = file.size - offset if piece == 0 else min(piece, file.size - offset)
            reached = self.patch(upload_id, file, offset, length)
            if reached != offset + length:
                raise RuntimeError(f"PATCH reached {reached}, expected {offset + length}")
            offset, patches = reached, patches + 1
        patch_end = time.perf_counter()
        loop_cpu, other_cpu = server_cpu.used()
        client_cpu = time.process_time() - client_cpu
        completed = self._check(
            self.admin.post(
                f"/api/models/uploads/{upload_id}/complete",
                {"name": MODEL_NAME, "tag": tag, "reason": "upload benchmark"},
            ),
            201,
            "complete upload",
        )
        end = time.perf_counter()
        sync_s = timed_sync()
        model = completed["model"]
        if model["digest"] != file.digest or model["size"] != file.size:
            raise RuntimeError(f"stored {model['digest']} ({model['size']} B), not the file")
        if model["metadata"]["parameter_count"] != file.parameters:
            raise RuntimeError(f"parsed {model['metadata']['parameter_count']} parameters")
        return {
            "tag": tag,
            "patches": patches,
            "start_s": patch_start - start,
            "patch_s": patch_end - patch_start,
            "complete_s": end - patch_end,
            "total_s": end - start,
            "sync_s": sync_s,
            "window": (start, end),
            "cpu_patch_s": {
                "server_loop": loop_cpu,
                "server_other": other_cpu,
                "client": client_cpu,
            },
        }


def memory_figures(
    sampler: RssSampler, before: tuple[int, int], window: tuple[float, float]
) -> dict[str, Any]:
    samples = sampler.window(*window)
    peak_own = max([s[1] for s in samples] + [before[0]])
    peak_total = max([s[2] for s in samples] + [before[1]])
    return {
        "samples": len(samples),
        "server_before_mb": before[0] / MB,
        "server_peak_mb": peak_own / MB,
        "server_growth_mb": (peak_own - before[0]) / MB,
        "with_embedded_before_mb": before[1] / MB,
        "with_embedded_peak_mb": peak_total / MB,
        "with_embedded_growth_mb": (peak_total - before[1]) / MB,
    }


def run(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    with running_pool(base) as pool:
        admin = AdminClient(pool.url)
        try:
            admin.onboard("bench@example.org")
            file = generate_gguf(base / "bench.gguf", args.size_mb)
            kinds = [("whole", 0)]
            if args.piece_mb:
                kinds.append((f"pieces-{args.piece_mb}", args.piece_mb * MIB))
            uploader = Uploader(admin, args)
            copies, uploads = [], []
            sampler = RssSampler(pool, args.sample_ms / 1000)
            try:
                for tag, piece in kinds:
                    # Two before each upload and one after the last: the disk of a shared
                    # machine varies by 3x from one copy to the next, the median of five less.
                    copies += [copy_baseline(file.path) for _ in range(2)]
                    before = settle_rss(sampler)
                    result = uploader.upload(file, tag, piece, pool)
                    result["memory"] = memory_figures(sampler, before, result.pop("window"))
                    uploads.append(result)
                after = sampler.now()
            finally:
                sampler.close()
            copies.append(copy_baseline(file.path))  # and one after the last
        finally:
            admin.close()
    baseline = {
        key: statistics.median(c[key] for c in copies)
        for key in ("copy_s", "sync_s", "total_s", "user_s")
    }
    return {
        "file": {
            "size": file.size,
            "tensors": file.tensors,
            "parameters": file.parameters,
            "generate_s": file.seconds,
        },
        "chunk_mb": args.chunk_mb,
        "copies": copies,
        "baseline": baseline,
        "uploads": uploads,
        "server_after_mb": after[0] / MB,
        "figures": figures(file.size, copies, baseline, uploads),
    }


def figures(
    size: int, copies: list[dict[str, float]], baseline: dict[str, float], uploads: list[Any]
) -> dict[str, Any]:
    copy_synced = mb_per_s(size, baseline["total_s"])
    copy_cached = mb_per_s(size, baseline["copy_s"])
    user_copy = mb_per_s(size, baseline["user_s"])
    out: dict[str, Any] = {
        "user_copy_mb_s": user_copy,
        "copy_synced_mb_s": copy_synced,
        "copy_synced_range_mb_s": sorted(mb_per_s(size, c["total_s"]) for c in copies),
        "copy_cached_mb_s": copy_cached,
        "uploads": {},
    }
    for u in uploads:
        synced = mb_per_s(size, u["total_s"] + u["sync_s"])
        cached = mb_per_s(size, u["total_s"])
        out["uploads"][u["tag"]] = {
            "synced_mb_s": synced,
            "cached_mb_s": cached,
            "patch_mb_s": mb_per_s(size, u["patch_s"]),
            "ratio": synced / copy_synced,
            "ratio_cached": cached / copy_cached,
            "ratio_user_copy": mb_per_s(size, u["patch_s"]) / user_copy,
            "ratio_met": synced / copy_synced >= TARGET_RATIO,
            "memory_met": u["memory"]["server_growth_mb"] < TARGET_GROWTH_MB,
        }
    return out


def report(results: dict[str, Any]) -> str:
    f, b, fig = results["file"], results["baseline"], results["figures"]
    size = f["size"]
    low, *_, high = fig["copy_synced_range_mb_s"]

    def verdict(ok: bool) -> str:
        return "MET" if ok else "MISSED"

    lines = [
        "Archipel upload benchmark (archipel serve on loopback, temp data dir under /tmp)",
        f"  file: {size / MB:,.1f} MB GGUF, {f['tensors']} float32 tensors, "
        f"{f['parameters']:,} parameters (generated in {f['generate_s']:.1f} s)",
        f"  client: httpx, one generator of {results['chunk_mb']} MiB chunks per PATCH",
        "",
        f"Baseline, plain copy on the same disk (shutil.copyfile), median of "
        f"{len(results['copies'])}:",
        f"  {fig['copy_synced_mb_s']:>9,.0f} MB/s  copy + sync  ({b['copy_s']:.2f} s + "
        f"{b['sync_s']:.2f} s; range {low:,.0f} - {high:,.0f} MB/s)",
        f"  {fig['copy_cached_mb_s']:>9,.0f} MB/s  copy alone (page cache)",
        f"  {fig['user_copy_mb_s']:>9,.0f} MB/s  user-space copy (read + write, 8 MiB chunks; "
        "page cache): a copy whose bytes pass through a process",
    ]
    for u in results["uploads"]:
        g, m, cpu = fig["uploads"][u["tag"]], u["memory"], u["cpu_patch_s"]
        how = "one PATCH" if u["patches"] == 1 else f"{u['patches']} PATCHes"

        def share(seconds: float, patch_s: float = u["patch_s"]) -> str:
            return f"{seconds:.2f} s ({100 * seconds / patch_s:.0f}%)"

        lines += [
            "",
            f"Upload '{u['tag']}' ({how}):",
            f"  {g['synced_mb_s']:>9,.0f} MB/s  start + PATCH + complete + sync  ("
            f"{u['start_s']:.2f} + {u['patch_s']:.2f} + {u['complete_s']:.2f} + "
            f"{u['sync_s']:.2f} s)",
            f"  {g['cached_mb_s']:>9,.0f} MB/s  start + PATCH + complete (page cache)",
            f"  {g['patch_mb_s']:>9,.0f} MB/s  PATCH alone",
            f"  PATCH alone = {g['ratio_user_copy']:.2f} of the user-space copy",
            f"  ratio {g['ratio']:.2f} of copy + sync (page cache: {g['ratio_cached']:.2f} of "
            f"the copy alone); target >= {TARGET_RATIO}: {verdict(g['ratio_met'])}",
            f"  CPU during the PATCHes (% of one core): server event loop "
            f"{share(cpu['server_loop'])},",
            f"    server other threads (to_thread: write + sha256) "
            f"{share(cpu['server_other'])}, client {share(cpu['client'])}",
            f"  server RSS: {m['server_before_mb']:.1f} MB before, {m['server_peak_mb']:.1f} MB "
            f"peak, growth {m['server_growth_mb']:.1f} MB ({m['samples']} samples); "
            f"target < {TARGET_GROWTH_MB:.0f} MB: {verdict(g['memory_met'])}",
            f"  with embedded Redis and PostgreSQL: {m['with_embedded_before_mb']:.1f} MB "
            f"before, {m['with_embedded_peak_mb']:.1f} MB peak, growth "
            f"{m['with_embedded_growth_mb']:.1f} MB",
        ]
    lines.append(f"\nServer RSS after the uploads: {results['server_after_mb']:.1f} MB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="arch-upload-", dir="/tmp"))  # short socket paths
    try:
        needed = FREE_FACTOR * args.size_mb * MIB
        free = shutil.disk_usage(base).free
        if free < needed:
            print(
                f"bench/upload.py: refused: {base.parent} has {free / MB:,.0f} MB free, and a "
                f"{args.size_mb} MiB upload needs {FREE_FACTOR}x its size, {needed / MB:,.0f} MB "
                "(the file, the stored blob, a second upload's partial file); try a smaller "
                "--size-mb",
                file=sys.stderr,
            )
            return 1
        results = run(args, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
