#!/usr/bin/env bash
# Baselines (popularity, last-item BM25, SASRec) on ml-latest-small (bundled) and ML-1M,
# full-catalogue leave-one-out test ranking, seen items excluded. Results: bench/baselines.md.
#
#   bash bench/baselines.sh [OUT_DIR]      (default /tmp/genrec-baselines)
#
# Heavy steps run under `flock /tmp/genrec-cpu.lock` so they never overlap other CPU jobs
# on this 2-core machine. SASRec trains on ML-1M for about 21 minutes on 2 free cores.
set -euo pipefail
OUT=${1:-/tmp/genrec-baselines}
LOCK="flock /tmp/genrec-cpu.lock"
mkdir -p "$OUT"

genrec prepare bundled --out "$OUT/small"
$LOCK genrec prepare recbole /work/shared/data/ml-1m --out "$OUT/ml1m"

for data in small ml1m; do
  for method in popularity last-item; do
    $LOCK genrec evaluate "$OUT/$data" --method "$method" --out "$OUT/eval-$data-$method"
  done
done

# SASRec: trains on each user's training part, early-stops on validation NDCG@10,
# saves the model, then ranks the test users. 40 epochs: about 21 minutes on 2 free cores.
$LOCK genrec evaluate "$OUT/ml1m" --method sasrec --set threads=2 --set epochs=40 --save-model "$OUT/sasrec-ml1m" \
  --out "$OUT/eval-ml1m-sasrec"

genrec compare "$OUT/eval-ml1m-popularity" "$OUT/eval-ml1m-last-item" "$OUT/eval-ml1m-sasrec" --out "$OUT/compare-ml1m"
genrec compare "$OUT/eval-small-popularity" "$OUT/eval-small-last-item" --out "$OUT/compare-small"
