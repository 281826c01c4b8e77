#!/usr/bin/env bash
# The multi-GPU paths of genrec, run end to end (issue 14, item 3): one prepared script for
# a machine with GPUs, and the same steps on a CPU with --cpu.
#
#   bash bench/gpu_check.sh                      # GPUs: (a) needs 1, (b) and (c) need 2
#   bash bench/gpu_check.sh --cpu                # the same steps on CPU at toy size (minutes on 2 cores)
#   bash bench/gpu_check.sh --backbone smollm2-135m   # a machine without the internet
#
# Logs: OUT/STEP.log and OUT/summary.txt (default bench/results/gpu-check); data, runs and
# evaluations: WORK (default $TMPDIR/genrec-gpu-check; checkpoints of a 1B model take GBs).
#
# Steps (summary.txt lists PASS/FAIL/SKIP for each):
#   a  one process: short train (bf16 on a GPU, fp32 on CPU; gradient accumulation,
#      validation during training, best checkpoint), then evaluate.
#   b  two processes, DDP (`accelerate launch --multi_gpu`; on CPU torchrun with gloo): train
#      with the same effective batch (run.json must show a's steps and examples), resume it
#      from its last checkpoint (load_state), then sharded evaluation with a device check
#      (rank r on cuda:r).
#   c  two processes, FSDP2 (`accelerate launch --use_fsdp --fsdp_version 2`): the same.
#      On CPU it is reported as SKIP: Accelerate turns FSDP on only for multi-GPU processes.
#
# The backbone defaults to TinyLlama/TinyLlama-1.1B-Chat-v1.0 on GPUs (1.1B, LLaMA layers,
# Apache-2.0, downloadable without a login) and to the tiny random LLaMA with --cpu; any
# alias, local folder or Hub id works with --backbone (--layer-cls names its decoder layer
# class for FSDP's wrapping; LlamaDecoderLayer fits LLaMA-style models, SmolLM2 included).
# Exit status: 0 when no step failed (skipped steps are listed), 1 otherwise.
set -uo pipefail

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  echo "options: --cpu  --backbone NAME  --layer-cls CLASS  --out DIR  --work DIR  --steps N  --users N"
}

CPU=0
BACKBONE=""
LAYER_CLS=LlamaDecoderLayer
OUT=""
WORK=${TMPDIR:-/tmp}/genrec-gpu-check
STEPS=4
USERS=32
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) CPU=1 ;;
    --backbone) BACKBONE=$2; shift ;;
    --layer-cls) LAYER_CLS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --work) WORK=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    --users) USERS=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

# folders given on the command line are relative to where the script was started
[ -n "$OUT" ] && OUT=$(realpath -m "$OUT")
WORK=$(realpath -m "$WORK")
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/bench/results/gpu-check}
PY=${PYTHON:-python}

fresh() {  # fresh DIR: an empty folder, replacing only one this script wrote before
  if [ -e "$1" ] && [ ! -f "$1/.gpu-check" ]; then
    echo "$1 exists and was not written by this script; choose another folder" >&2
    exit 2
  fi
  rm -rf "$1"
  mkdir -p "$1"
  touch "$1/.gpu-check"
}
fresh "$OUT"
fresh "$WORK"
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
FAILED=0

note() { echo "$*" | tee -a "$SUMMARY"; }

# run NAME COMMAND...: the command's output goes to OUT/NAME.log (and the screen)
run() {
  local name=$1
  shift
  echo "== $name: $*"
  if { printf '$'; printf ' %q' "$@"; echo; "$@"; } >"$OUT/$name.log" 2>&1; then
    tail -n 3 "$OUT/$name.log"
    note "PASS $name"
    return 0
  fi
  tail -n 30 "$OUT/$name.log"
  note "FAIL $name (see $OUT/$name.log)"
  FAILED=1
  return 1
}

skip() { note "SKIP $1: $2"; }

# check_run RUN PROCESSES: run.json says the run finished with STEPS steps on PROCESSES processes
check_run() {
  "$PY" - "$1" "$2" "$STEPS" <<'EOF'
import json, sys
info = json.load(open(f"{sys.argv[1]}/run.json"))
want = {"status": info["status"], "steps_done": info["steps_done"], "processes": info["processes"]}
assert info["status"] in ("finished", "stopped early") and info["processes"] == int(sys.argv[2]), want
assert info["steps_done"] == int(sys.argv[3]), want
print({k: info.get(k) for k in ("status", "steps_done", "examples_seen", "tokens_seen", "processes", "accumulation_steps", "adapter_step")})
EOF
}

# same_steps RUN_A RUN_B: two runs of the same settings took the same steps on the same examples
same_steps() {
  "$PY" - "$1" "$2" <<'EOF'
import json, sys
a, b = (json.load(open(f"{p}/run.json")) for p in sys.argv[1:3])
for key in ("steps_done", "examples_seen", "tokens_seen"):
    assert a[key] == b[key], (key, a[key], b[key])
print("same steps, examples and tokens:", a["steps_done"], a["examples_seen"], a["tokens_seen"])
EOF
}

# check_eval EVAL PROCESSES: metrics.json has the headline metrics of USERS users
check_eval() {
  "$PY" - "$1" "$2" "$USERS" <<'EOF'
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
assert m["settings"]["world_size"] == int(sys.argv[2]), m["settings"]["world_size"]
assert m["n_users"] == int(sys.argv[3]), m["n_users"]
print({k: m.get(k) for k in ("hr@10", "ndcg@10", "valid_rate", "users_per_second")})
EOF
}

# the device check of sharded evaluation: rank r runs on cuda:(LOCAL_RANK mod GPUs)
cat >"$WORK/probe_device.py" <<'EOF'
import os

import torch

from genrec.evaluation import distributed

distributed.init(int(os.environ.get("WORLD_SIZE", "1")))
rank, world = distributed.rank_and_world()
if torch.cuda.is_available():
    want = int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count()
    got = torch.cuda.current_device()
    print(f"rank {rank}/{world}: cuda:{got} (LOCAL_RANK {os.environ.get('LOCAL_RANK')})", flush=True)
    assert got == want, f"rank {rank} is on cuda:{got}, not cuda:{want}"
    assert torch.zeros(1, device="cuda").device.index == want
else:
    print(f"rank {rank}/{world}: no GPU, evaluation runs on the CPU", flush=True)
distributed.finish()
EOF

# --- the machine ---------------------------------------------------------------------------
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(hostname), $(nproc) cores"
  "$PY" -c 'import platform, torch, accelerate, transformers, peft; print("python", platform.python_version(), "torch", torch.__version__, "accelerate", accelerate.__version__, "transformers", transformers.__version__, "peft", peft.__version__, "cuda", torch.version.cuda, "GPUs", torch.cuda.device_count())'
} | tee -a "$SUMMARY"
if [ "$CPU" = 1 ]; then
  GPUS=0
  BACKBONE=${BACKBONE:-tiny-random-llama}
  DTYPE=fp32
  export OMP_NUM_THREADS=1
  TWO=("$PY" -m torch.distributed.run --standalone --nproc_per_node 2)
  FSDP=()
else
  if ! command -v nvidia-smi >/dev/null || ! nvidia-smi >"$OUT/nvidia-smi.log" 2>&1; then
    note "FAIL nvidia-smi: no working NVIDIA driver here; use --cpu on a machine without GPUs"
    exit 1
  fi
  nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader | tee -a "$SUMMARY"
  GPUS=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
  BACKBONE=${BACKBONE:-TinyLlama/TinyLlama-1.1B-Chat-v1.0}
  DTYPE=bf16
  TWO=("$PY" -m accelerate.commands.accelerate_cli launch --multi_gpu --num_processes 2 --mixed_precision bf16)
  FSDP=("$PY" -m accelerate.commands.accelerate_cli launch --use_fsdp --fsdp_version 2 --num_processes 2 --mixed_precision bf16
        --fsdp_auto_wrap_policy TRANSFORMER_BASED_WRAP --fsdp_transformer_layer_cls_to_wrap "$LAYER_CLS"
        --fsdp_state_dict_type SHARDED_STATE_DICT --fsdp_reshard_after_forward true --fsdp_cpu_ram_efficient_loading false)
fi
note "backbone $BACKBONE, dtype $DTYPE, $STEPS steps, $USERS evaluation users"

DATA=$WORK/data
# batch 4 of effective 16: one process accumulates 4 micro-batches a step, each of two 2;
# validation (loss and constrained-decoding HR/NDCG) every 2 steps, on every process
SETTINGS=(--preset recommended --backbone "$BACKBONE" --max-steps "$STEPS"
          --set dtype=$DTYPE --set max_users=64 --set windows=recent --set windows_per_user=2
          --set batch_size=4 --set effective_batch=16 --set warmup_steps=0 --set log_every=1
          --set eval_every=2 --set eval_users=16 --set save_every=2 --set keep_checkpoints=2)
EVAL=(--limit "$USERS" --batch-size 8)

run prepare "$PY" -m genrec prepare bundled --out "$DATA" || { note "cannot go on without data"; exit 1; }

# --- a: one process ------------------------------------------------------------------------
if [ "$CPU" = 1 ] || [ "$GPUS" -ge 1 ]; then
  run a-train "$PY" -m genrec train "$DATA" --out "$WORK/a-run" "${SETTINGS[@]}" \
    && run a-check check_run "$WORK/a-run" 1 \
    && run a-evaluate "$PY" -m genrec evaluate "$DATA" --run "$WORK/a-run" --out "$WORK/a-eval" "${EVAL[@]}" \
    && run a-check-eval check_eval "$WORK/a-eval" 1
else
  skip a "no GPU"
fi

# --- b, c: two processes -------------------------------------------------------------------
# `-m -- genrec`: "--" ends the launcher's own options, so genrec's are never read as
# abbreviations of them (torchrun takes `--run` for its --run-path/--run_path)
two_processes() {  # two_processes STEP LAUNCHER...
  local step=$1
  shift
  run "$step-train" "$@" -m -- genrec train "$DATA" --out "$WORK/$step-run" "${SETTINGS[@]}" \
    && run "$step-check" check_run "$WORK/$step-run" 2 \
    && { [ ! -f "$WORK/a-run/run.json" ] || run "$step-same-steps-as-a" same_steps "$WORK/a-run" "$WORK/$step-run"; } \
    && run "$step-resume" "$@" -m -- genrec train "$DATA" --out "$WORK/$step-run" --resume \
    && run "$step-check-resumed" check_run "$WORK/$step-run" 2 \
    && run "$step-device" "${TWO[@]}" "$WORK/probe_device.py" \
    && run "$step-evaluate" "${TWO[@]}" -m -- genrec evaluate "$DATA" --run "$WORK/$step-run" --out "$WORK/$step-eval" "${EVAL[@]}" \
    && run "$step-check-eval" check_eval "$WORK/$step-eval" 2
}

if [ "$CPU" = 1 ] || [ "$GPUS" -ge 2 ]; then
  two_processes b "${TWO[@]}"
else
  skip b "DDP needs 2 GPUs (found $GPUS)"
fi
if [ "$CPU" = 1 ]; then
  skip c "FSDP cannot run on a CPU: Accelerate turns FSDP on only for multi-GPU processes (accelerate/state.py)"
elif [ "$GPUS" -ge 2 ]; then
  two_processes c "${FSDP[@]}"
else
  skip c "FSDP needs 2 GPUs (found $GPUS)"
fi

echo
cat "$SUMMARY"
exit "$FAILED"
