"""Statistics that scale (issue 14 item 5): the exact McNemar test and the bootstrap, old way vs new.

Same inputs, same machine, same run:

  (a) the straightforward way genrec used before: McNemar's two-sided p-value as
      ``2 · sum(math.comb(m, i) for i <= min(b, c)) / 2^m`` in exact integers, and the
      bootstrap from one dense (resamples × users) multinomial count matrix;
  (b) genrec's ``genrec.evaluation._stats``: the sign test summed in log space, and the
      same counts drawn in chunks of rows (``CHUNK_CELLS`` cells at a time).

Prints the time of each, the ratios, the bootstrap's peak memory (tracemalloc, which sees
numpy's buffers) and the largest difference between the values (the p-values agree to
about 1e-11 relative; the intervals use the same resamples, so they agree to rounding).
The new McNemar is also timed at 30,000 and 1,000,000 discordant users, where the old one
takes minutes and is not run. Ends with one ``RESULT`` line. The default sizes (old
McNemar at 10,000 discordant users, bootstrap at 40,000 users × 1,000 resamples: a 320 MB
dense matrix) finish in well under a minute on one core.

Run under the machine's CPU lock:  flock /tmp/genrec-cpu.lock python bench/stats_speed.py
"""

from __future__ import annotations

import argparse
import math
import time
import tracemalloc
from pathlib import Path

import numpy as np

#: present while another engineer's long benchmark holds the CPU
BUSY = Path("/tmp/genrec-cpu-busy")


def old_mcnemar_p(k: int, m: int) -> float:
    """The exact test as it was: one math.comb per term of the tail."""
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, i) for i in range(min(k, m - k) + 1))
    return min(1.0, 2 * tail / 2**m)


def old_bootstrap_ci(values: np.ndarray, n_resamples: int, seed: int, level: float = 0.95) -> np.ndarray:
    """Percentile intervals as they were: one (n_resamples, n) count matrix."""
    n = values.shape[0]
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(np.float64)
    alpha = (1.0 - level) / 2.0
    return np.quantile(counts @ values / n, [alpha, 1.0 - alpha], axis=0).T


def timed(fn, *args, repeat: int = 1) -> tuple[object, float]:
    """(result, best seconds per call over `repeat` calls)."""
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return out, best


def with_peak(fn, *args) -> tuple[object, float, int]:
    """(result, seconds, peak bytes traced while it ran)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--discordant", type=int, default=10_000, help="discordant users for the old-vs-new McNemar timing")
    p.add_argument("--users", type=int, default=40_000, help="users for the old-vs-new bootstrap")
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--metrics", type=int, default=12, help="metric columns bootstrapped together (compute_metrics has about 12)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if BUSY.exists():
        print(f"{BUSY} exists: another benchmark holds the CPU, so timings would mean nothing; run this later")
        return

    from genrec.evaluation._stats import CHUNK_CELLS, bootstrap_ci, chunk_rows, sign_test_p

    # McNemar: a 3-standard-error difference between the two methods' discordant users
    rows = []
    m = a.discordant
    k = m // 2 - int(1.5 * math.sqrt(m))
    old_p, t_old = timed(old_mcnemar_p, k, m)
    new_p, t_new = timed(sign_test_p, k, m, repeat=20)
    mc_ratio = t_old / t_new
    rows.append(f"McNemar, {m:,} discordant users: math.comb sum {t_old:.3f} s, log-space {t_new * 1e3:.3f} ms "
                f"({mc_ratio:,.0f}x); p {old_p:.6g} vs {new_p:.6g} (relative difference {abs(new_p - old_p) / old_p:.1e})")
    big = {}
    for mm in (30_000, 1_000_000):
        _, big[mm] = timed(sign_test_p, mm // 2 - int(1.5 * math.sqrt(mm)), mm, repeat=5)
        rows.append(f"McNemar, {mm:,} discordant users: log-space {big[mm] * 1e3:.2f} ms (the math.comb sum: minutes, not run)")

    # bootstrap: the same resamples, dense vs chunked
    n, r = a.users, a.resamples
    values = np.random.default_rng(a.seed).random((n, a.metrics))
    old_ci, t_dense, peak_dense = with_peak(old_bootstrap_ci, values, r, a.seed)
    new_ci, t_chunk, peak_chunk = with_peak(bootstrap_ci, values, r, a.seed)
    diff = float(np.abs(np.asarray(old_ci) - np.asarray(new_ci)).max())
    speed_ratio, mem_ratio = t_dense / t_chunk, peak_dense / peak_chunk
    rows.append(f"bootstrap, {n:,} users x {r:,} resamples x {a.metrics} metrics: dense {t_dense:.2f} s, "
                f"peak {peak_dense / 2**20:,.0f} MiB; chunked ({chunk_rows(n, r)} resamples a chunk, {CHUNK_CELLS:,} cells) "
                f"{t_chunk:.2f} s, peak {peak_chunk / 2**20:,.0f} MiB; time ratio {speed_ratio:.2f}, memory ratio "
                f"{mem_ratio:.1f}; largest interval difference {diff:.1e}")
    for row in rows:
        print(row)
    print(f"RESULT mcnemar_speedup={mc_ratio:.0f} mcnemar_30000_ms={big[30_000] * 1e3:.3f} "
          f"mcnemar_1000000_ms={big[1_000_000] * 1e3:.3f} bootstrap_time_ratio={speed_ratio:.2f} "
          f"bootstrap_memory_ratio={mem_ratio:.1f} bootstrap_max_diff={diff:.1e}")


if __name__ == "__main__":
    main()
