"""Load test of `genrec serve`: request batching on vs one request at a time.

Starts ``genrec serve`` on loopback (a subprocess) for a run folder, and drives it with
``--clients`` concurrent clients (httpx, asyncio), each sending ``POST /recommend``
with a real test user's history (titles, as a caller would) and waiting for the answer
before the next, for ``--seconds`` after a warm-up. It does this twice: with batching
(``--max-batch``, ``--max-wait-ms``) and with ``--max-batch 1`` (the decoder sees one
request at a time). Prints, for each, requests/s, latency percentiles, errors and the
mean decoding batch the server reports, then the ratio, and ends with one line::

    RESULT batching_ratio=... requests_per_second=... p50_ms=... p99_ms=... errors=...

(figures of the batched server; errors of both runs). Without ``--run`` it prepares the
bundled ml-latest-small and trains a 2-step run of ``--backbone`` (tiny-random-llama
by default; smollm2-135m for realistic per-token cost), cached in the temp folder.

Run under the machine's CPU lock:
    flock /tmp/genrec-cpu.lock python bench/serve_load.py
    flock /tmp/genrec-cpu.lock python bench/serve_load.py --backbone smollm2-135m --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

GENREC = [sys.executable, "-m", "genrec"]


def ensure_run(backbone: str, data: Path | None) -> tuple[Path, Path]:
    """A prepared bundled dataset and a 2-step run of `backbone` (cached between invocations)."""
    root = Path(tempfile.gettempdir()) / "genrec-bench-serve"
    data = data or root / "ml-latest-small"
    if not (data / "manifest.json").is_file():
        subprocess.run([*GENREC, "prepare", "bundled", "--out", str(data)], check=True)
    run = root / f"run-{backbone}"
    if not (run / "adapter").is_dir():
        subprocess.run([*GENREC, "train", str(data), "--out", str(run), "--backbone", backbone, "--max-steps", "2",
                        "--overwrite", "--set", "batch_size=4", "--set", "effective_batch=8", "--set", "max_users=8"], check=True)
    return run, data


def histories(data: Path, n: int) -> list[list[str]]:
    """The first `n` test users' histories as titles (what a client would send)."""
    from genrec.data import Dataset

    ds = Dataset(data)
    titles = ds.catalogue.titles
    rows = ds.examples("test").head(n)["history"].to_list()
    return [[titles[i] for i in h] for h in rows if len(h)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`genrec serve` in a subprocess, up once /health answers."""

    def __init__(self, run: Path, max_batch: int, max_wait_ms: float, threads: int | None, beams: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [*GENREC, "serve", "--run", str(run), "--port", str(self.port), "--max-batch", str(max_batch),
               "--max-wait-ms", str(max_wait_ms), "--beams", str(beams), "--no-persist", "--log-level", "warning"]
        if threads:
            cmd += ["--threads", str(threads)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def wait_ready(self, timeout: float = 600) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"genrec serve exited with {self.proc.returncode}:\n{self.proc.stderr.read()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"genrec serve did not answer /health within {timeout:.0f} s")

    def health(self) -> dict:
        return httpx.get(f"{self.url}/health", timeout=30).json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def drive(url: str, hists: list[list[str]], clients: int, k: int, warmup: float, seconds: float) -> dict:
    """`clients` closed-loop clients; latencies of requests that start after the warm-up."""
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def client(c: int, http: httpx.AsyncClient) -> None:
        n = c
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            body = {"history": hists[n % len(hists)], "k": k}
            n += clients
            try:
                r = await http.post(f"{url}/recommend", json=body)
                ok = r.status_code == 200 and len(r.json()["items"]) == k
                problem = None if ok else f"{r.status_code}: {r.text[:200]}"
            except httpx.HTTPError as e:
                problem = f"{type(e).__name__}: {e}"
            t1 = time.perf_counter()
            if t0 >= measure_from:
                latencies.append(t1 - t0)
                if problem:
                    errors.append(problem)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        await asyncio.gather(*(client(c, http) for c in range(clients)))
    measured = time.perf_counter() - measure_from
    lat = np.array(latencies) * 1000
    return {
        "requests": len(lat),
        "errors": len(errors),
        "error_examples": errors[:3],
        "requests_per_second": len(lat) / measured if measured > 0 else 0.0,
        "p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
        "p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
        "p99_ms": float(np.percentile(lat, 99)) if lat.size else float("nan"),
    }


def measure(run: Path, hists, args, max_batch: int) -> dict:
    server = Server(run, max_batch, args.max_wait_ms, args.threads, args.beams)
    try:
        t0 = time.perf_counter()
        server.wait_ready()
        print(f"  server up in {time.perf_counter() - t0:.1f} s (max_batch={max_batch})", flush=True)
        before = server.health()
        result = asyncio.run(drive(server.url, hists, args.clients, args.k, args.warmup, args.seconds))
        after = server.health()
    finally:
        server.stop()
    batches = after["batches"] - before["batches"]
    result["mean_batch"] = (after["decoded"] - before["decoded"]) / batches if batches else 0.0
    return result


def show(name: str, r: dict) -> None:
    print(f"{name:>22}: {r['requests_per_second']:7.2f} requests/s  p50 {r['p50_ms']:8.1f} ms  p95 {r['p95_ms']:8.1f} ms  "
          f"p99 {r['p99_ms']:8.1f} ms  requests {r['requests']}  errors {r['errors']}  mean batch {r['mean_batch']:.1f}")
    for e in r["error_examples"]:
        print(f"{'':>24}error: {e}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="run folder (default: train a 2-step run of --backbone)")
    p.add_argument("--backbone", default="tiny-random-llama", help="tiny-random-llama or smollm2-135m (when no --run)")
    p.add_argument("--data", type=Path, help="dataset folder for the histories (default: the run's / bundled)")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=20.0, help="measured time per configuration")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of requests not measured, per configuration")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--beams", type=int, default=10)
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=None, help="server's torch threads (default: torch's)")
    p.add_argument("--users", type=int, default=256, help="distinct test histories to cycle through")
    args = p.parse_args()

    if args.run is None:
        run, data = ensure_run(args.backbone, args.data)
    else:
        from genrec.training.rundir import RunDir

        run, data = args.run, args.data or Path(RunDir(args.run).info()["dataset"]["path"])
    hists = histories(data, args.users)
    print(f"run {run}, {len(hists)} histories, {args.clients} clients, {args.seconds:.0f} s each, k={args.k}, "
          f"{os.cpu_count()} CPUs", flush=True)

    batched = measure(run, hists, args, args.max_batch)
    show(f"batched (max {args.max_batch})", batched)
    single = measure(run, hists, args, 1)
    show("one at a time", single)
    ratio = batched["requests_per_second"] / single["requests_per_second"] if single["requests_per_second"] else float("inf")
    print(f"batching gives {ratio:.2f}x the requests/s of one-at-a-time decoding at {args.clients} concurrent clients")
    print(f"RESULT batching_ratio={ratio:.2f} requests_per_second={batched['requests_per_second']:.2f} "
          f"p50_ms={batched['p50_ms']:.1f} p99_ms={batched['p99_ms']:.1f} errors={batched['errors'] + single['errors']}")


if __name__ == "__main__":
    main()
