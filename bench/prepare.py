"""Benchmark `genrec prepare` on a synthetic ML-25M-sized release and on the real ML-1M.

The synthetic folder has GroupLens's ML-25M layout (``ratings.csv`` + ``movies.csv``)
and its shape: 25,000,095 ratings by 162,541 users of 62,423 movies in the real set,
here 25,000,000 / 162,000 / 62,000 by default. Users have at least 20 ratings and a
long-tailed count; movies are drawn with Zipf-like popularity; each user's timestamps
rise with about 15% ties; the file is ordered by user, then movie id (as GroupLens
orders it), so prepare has to sort by time; titles have years and some hold commas.

Each prepare runs as a subprocess (``python -m genrec prepare ...``); its wall time and
peak resident memory (``wait4`` rusage) are reported. The last line is machine-readable::

    RESULT ml1m_seconds=... m25_seconds=... m25_peak_mb=...

Run: ``flock /tmp/genrec-cpu.lock python bench/prepare.py`` (``--ratings 1000000`` for a
quick run; ``--keep DIR`` to keep, and later reuse, the synthetic folder).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parent.parent
ML1M = REPO.parent / "shared" / "data" / "ml-1m"

_WORDS = (
    "night day river city love war star dark light last first secret man woman house "
    "road king queen ghost summer winter blue red dream game story heart fire water "
    "stone garden island return journey silent lost golden wild little big"
).split()
_GENRES = (
    "Action Adventure Animation Children Comedy Crime Documentary Drama Fantasy "
    "Film-Noir Horror IMAX Musical Mystery Romance Sci-Fi Thriller War Western"
).split()


def write_movies(folder: Path, n_movies: int, rng: np.random.Generator) -> None:
    words = np.array([w.capitalize() for w in _WORDS])
    n_words = rng.integers(1, 5, n_movies)
    picks = rng.integers(0, len(words), (n_movies, 4))
    years = rng.integers(1920, 2020, n_movies)
    titles = []
    for i in range(n_movies):
        t = " ".join(words[picks[i, : n_words[i]]])
        r = rng.random()
        if r < 0.08:  # GroupLens moves leading articles to the end: "Matrix, The (1999)"
            t = f"{t}, The"
        elif r < 0.12:
            t = f"{t}, {words[picks[i, 3]]} and Me"
        titles.append(f"{t} {i} ({years[i]})")  # the number keeps titles apart
    n_genres = rng.integers(0, 4, n_movies)
    genre_picks = rng.integers(0, len(_GENRES), (n_movies, 3))
    genres = [
        "|".join(sorted({_GENRES[g] for g in genre_picks[i, : n_genres[i]]})) or "(no genres listed)"
        for i in range(n_movies)
    ]
    pl.DataFrame({"movieId": np.arange(1, n_movies + 1), "title": titles, "genres": genres}).write_csv(
        folder / "movies.csv"
    )


def write_ratings(folder: Path, n_ratings: int, n_users: int, n_movies: int,
                  rng: np.random.Generator, chunk: int = 2_000_000) -> None:
    """Write ratings.csv in chunks of whole users so memory stays small."""
    min_per_user = 20 if n_ratings >= 40 * n_users else 2
    extra = n_ratings - min_per_user * n_users
    if extra < 0:
        raise SystemExit(f"--ratings {n_ratings} is too few for {n_users} users")
    weights = rng.lognormal(0.0, 1.3, n_users)
    counts = min_per_user + np.floor(weights / weights.sum() * extra).astype(np.int64)
    counts[: n_ratings - counts.sum()] += 1  # hand out the rounding remainder
    # Zipf-like popularity over movies (rank 0 = most popular), sampled by inverse CDF
    pop = 1.0 / (np.arange(n_movies) + 10.0) ** 1.05
    cdf = np.cumsum(pop / pop.sum())
    movie_of_rank = rng.permutation(n_movies) + 1
    ends = np.cumsum(counts)
    with open(folder / "ratings.csv", "wb") as f:
        f.write(b"userId,movieId,rating,timestamp\n")
        u0 = 0
        while u0 < n_users:
            start = ends[u0 - 1] if u0 else 0
            u1 = int(np.searchsorted(ends, start + chunk, side="right"))
            u1 = max(u1, u0 + 1)
            c = counts[u0:u1]
            n = int(c.sum())
            user = np.repeat(np.arange(u0 + 1, u1 + 1), c)
            movie = movie_of_rank[np.minimum(np.searchsorted(cdf, rng.random(n)), n_movies - 1)]
            rating = rng.integers(1, 11, n) / 2.0
            # per-user rising timestamps: a random start, gaps with ~15% zero (ties)
            gaps = rng.exponential(3600.0, n).astype(np.int64)
            gaps[rng.random(n) < 0.15] = 0
            first = np.repeat(np.cumsum(c) - c, c)
            cum = np.cumsum(gaps)
            base = cum[first]
            ts = np.repeat(rng.integers(820_000_000, 1_560_000_000, len(c)), c) + (cum - base)
            # GroupLens orders each user's lines by movie id, not by time
            order = np.lexsort((movie, user))
            pl.DataFrame(
                {"userId": user[order], "movieId": movie[order], "rating": rating[order], "timestamp": ts[order]}
            ).write_csv(f, include_header=False)
            u0 = u1


def make_release(folder: Path, n_ratings: int, n_users: int, n_movies: int, seed: int) -> float:
    params = {"ratings": n_ratings, "users": n_users, "movies": n_movies, "seed": seed}
    stamp = folder / "bench.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        return 0.0  # reuse the folder a previous --keep run wrote
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    write_movies(folder, n_movies, rng)
    write_ratings(folder, n_ratings, n_users, n_movies, rng)
    stamp.write_text(json.dumps(params))
    return time.perf_counter() - t


def run_prepare(args: list[str]) -> tuple[float, float, str]:
    """Run `python -m genrec prepare ARGS`; return (seconds, peak RSS in MB, last line)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "genrec", "prepare", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"genrec prepare {' '.join(args)} failed:\n{output}")
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    return seconds, usage.ru_maxrss / 1024, lines[-1] if lines else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ratings", type=int, default=25_000_000)
    ap.add_argument("--users", type=int, default=None, help="default: scaled like ML-25M (162,000 at 25M)")
    ap.add_argument("--movies", type=int, default=None, help="default: scaled like ML-25M (62,000 at 25M)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None, help="write the synthetic folder here and keep it")
    ap.add_argument("--skip-ml1m", action="store_true", help="do not time the real ML-1M")
    a = ap.parse_args()
    scale = a.ratings / 25_000_000
    users = a.users or max(50, round(162_000 * scale))
    movies = a.movies or max(100, round(62_000 * scale))

    work = Path(tempfile.mkdtemp(prefix="genrec-bench-"))
    try:
        folder = a.keep or work / "ml-synthetic"
        gen_s = make_release(folder, a.ratings, users, movies, a.seed)
        rows = []
        m25_s, m25_mb, m25_line = run_prepare(["movielens", str(folder), "--out", str(work / "out-synth")])
        rows.append((f"synthetic ({a.ratings:,} ratings)", m25_s, m25_mb, m25_line))
        ml1m_s = float("nan")
        if not a.skip_ml1m and ML1M.is_dir():
            ml1m_s, ml1m_mb, line = run_prepare(["recbole", str(ML1M), "--out", str(work / "out-ml1m")])
            rows.append(("ML-1M (recbole)", ml1m_s, ml1m_mb, line))
        print(f"synthetic folder: {folder} (generated in {gen_s:.1f} s; 0 = reused)")
        print(f"{'data':<34} {'seconds':>8} {'peak MB':>8}  output")
        for name, s, mb, line in rows:
            print(f"{name:<34} {s:8.1f} {mb:8.0f}  {line}")
        print(f"RESULT ml1m_seconds={ml1m_s:.1f} m25_seconds={m25_s:.1f} m25_peak_mb={m25_mb:.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
