"""The multi-process paths go through Accelerate's own mechanisms (issue 14, item 3), and
Accelerate's trackers log beside train_log.jsonl (item 6).

What runs here: two gloo processes under torchrun on the CPU (DDP), one process, and unit
tests of what only matters on GPUs (the prepared parameters clipping reads; the device a
sharded evaluation rank takes is in tests/evaluation/test_sharding.py). FSDP cannot run
on a CPU: Accelerate 1.16 turns FSDP on only for multi-GPU processes (``accelerate/state.py``;
``accelerate launch --use_fsdp --cpu`` starts one plain process), so FSDP2 is exercised by
``bench/gpu_check.sh`` on a machine with GPUs, and FSDP1 is refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from genrec.errors import ConfigError, GenrecError
from genrec.training.config import TrainConfig
from genrec.training.loop import train
from genrec.training.rundir import RunDir
from tests._util import REPO, requires_packaged

BASE = {
    "backbone": "tiny-random-llama", "max_users": 16, "windows": "recent", "windows_per_user": 4,
    "batch_size": 4, "effective_batch": 8, "warmup_steps": 0, "save_every": 3, "threads": 2,
    # dropout draws from the generators every step: resuming equals an uninterrupted run only
    # when their states come back with the checkpoint
    "lora": {"r": 8, "alpha": 16, "dropout": 0.1, "target_modules": ["q_proj", "v_proj", "o_proj"]},
}


def cfg(**kw) -> TrainConfig:
    return TrainConfig.build({**BASE, **kw})


def adapter(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / "adapter" / "adapter_model.safetensors")


def losses(run: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in RunDir(run).read_log() if e["kind"] == "train"}


# --- accumulation: N processes take the steps one process takes --------------------------

#: run as a script, alone or under torchrun: trains, then writes what each process did
_COUNTING_TRAIN = '''
import json, os, sys

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from genrec.training import losses, validation
from genrec.training.config import TrainConfig
from genrec.training.loop import train

data_dir, run_dir, batch_size, counts = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(1)
calls = {"forward": 0, "optimizer_step": 0, "validation": 0}


def counted(name, fn):
    def wrapper(*a, **k):
        calls[name] += 1
        return fn(*a, **k)
    return wrapper


losses.SummedLoss.forward = counted("forward", losses.SummedLoss.forward)
validation.Validator.__call__ = counted("validation", validation.Validator.__call__)
register_optimizer_step_post_hook(lambda *a: calls.__setitem__("optimizer_step", calls["optimizer_step"] + 1))
train(data_dir, run_dir, TrainConfig.build({**json.loads(os.environ["GENREC_TEST_CONFIG"]), "batch_size": batch_size}))
with open(f"{counts}-{os.environ.get('RANK', '0')}.json", "w") as f:
    json.dump(calls, f)
'''

DIST = {
    "backbone": "tiny-random-llama", "max_users": 12, "windows": "recent", "windows_per_user": 2,
    "effective_batch": 8, "max_steps": 3, "lr": 5e-3, "warmup_steps": 0, "schedule": "linear",
    "lora": {"dropout": 0.0, "target_modules": ["q_proj", "v_proj", "o_proj"]}, "save_every": None, "threads": 1,
    # validation at the last step, on every process, and the best adapter saved by all of them
    "eval_every": 3, "eval_users": 8, "eval_decode": False, "select_best": True, "metric": "loss",
}


@requires_packaged
def test_two_processes_accumulating_take_the_steps_of_one(bundled_dir, tmp_path):
    """effective_batch 8 of micro-batches of 2: one process accumulates 4, each of two
    processes 2; both make 3 optimizer steps on the same 24 examples with the same
    learning rates (a scheduler stepped once per process, or an optimizer stepped per
    micro-batch as DeepSpeed did without accumulate, would show here)."""
    script = tmp_path / "counting_train.py"
    script.write_text(_COUNTING_TRAIN)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "GENREC_TEST_CONFIG": json.dumps(DIST)}
    runs = {}
    for name, launcher in (("one", []), ("two", ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"])):
        args = [str(script), str(bundled_dir), str(tmp_path / name), "2", str(tmp_path / f"counts-{name}")]
        done = subprocess.run([sys.executable, *launcher, *args], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = json.loads((tmp_path / name / "run.json").read_text())
    one, two = runs["one"], runs["two"]
    assert (one["processes"], one["accumulation_steps"]) == (1, 4)
    assert (two["processes"], two["accumulation_steps"]) == (2, 2)
    for key in ("steps_done", "examples_seen", "tokens_seen", "adapter_step"):
        assert one[key] == two[key], key
    assert one["steps_done"] == 3 and one["examples_seen"] == 24
    counts = {f.name: json.loads(f.read_text()) for f in tmp_path.glob("counts-*.json")}
    assert counts["counts-one-0.json"] == {"forward": 12, "optimizer_step": 3, "validation": 1}
    assert counts["counts-two-0.json"] == counts["counts-two-1.json"] == {"forward": 6, "optimizer_step": 3, "validation": 1}
    log_one, log_two = RunDir(tmp_path / "one").read_log(), RunDir(tmp_path / "two").read_log()
    assert [(e["kind"], e["step"]) for e in log_one] == [(e["kind"], e["step"]) for e in log_two]
    assert [e["lr"] for e in log_one if e["kind"] == "train"] == [e["lr"] for e in log_two if e["kind"] == "train"]
    for a, b in zip(log_one, log_two, strict=True):
        key = "loss" if a["kind"] == "train" else "valid_loss"
        assert a[key] == pytest.approx(b[key], rel=1e-4)
    a, b = adapter(tmp_path / "one"), adapter(tmp_path / "two")
    assert a.keys() == b.keys()
    for k in a:
        # Adam divides by sqrt(v): float summation order moves tiny gradients slightly
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-5)
    assert (tmp_path / "two" / "best").is_dir()


def test_accumulation_is_the_global_effective_batch_over_batch_size_and_processes():
    from genrec.training.loop import accumulation_steps

    c = TrainConfig.build({"batch_size": 2, "effective_batch": 8})
    assert [accumulation_steps(c, world) for world in (1, 2, 4)] == [4, 2, 1]
    with pytest.raises(GenrecError, match=r"multiple of batch_size × processes \(6\)"):
        accumulation_steps(c, 3)


def test_an_accumulation_set_outside_genrec_is_refused(bundled_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "3")
    with pytest.raises(GenrecError, match="gradient_accumulation_steps=3") as e:
        train(bundled_dir, tmp_path / "run", cfg(max_steps=1))
    assert "set effective_batch instead" in str(e.value)
    assert not (tmp_path / "run").exists()


def test_fsdp1_is_refused_with_the_fix():
    from accelerate.utils import DistributedType

    from genrec.training.loop import check_distributed

    with pytest.raises(GenrecError, match="--fsdp_version 2"):
        check_distributed(SimpleNamespace(distributed_type=DistributedType.FSDP, is_fsdp2=False, gradient_accumulation_steps=1), 1)
    check_distributed(SimpleNamespace(distributed_type=DistributedType.FSDP, is_fsdp2=True, gradient_accumulation_steps=1), 1)


# --- clipping reads the prepared model's parameters --------------------------------------

def test_clipping_bounds_the_gradients_of_the_prepared_model():
    from accelerate import Accelerator

    from genrec.training.loop import clip_gradients

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 1))
    model[0].weight.requires_grad_(False)  # frozen, as a LoRA backbone: passed, and skipped (no gradient)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    accelerator.backward(wrapped(torch.ones(3, 4, device=accelerator.device)).sum() * 1e6)
    assert float(clip_gradients(accelerator, wrapped, 1.0)) > 1e3
    grads = [p.grad for p in wrapped.parameters() if p.grad is not None]
    assert len(grads) == 3
    assert float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))) == pytest.approx(1.0, rel=1e-4)


@requires_packaged
def test_training_clips_exactly_the_prepared_parameters_once_a_step(bundled_dir, tmp_path, monkeypatch):
    """Under FSDP, Accelerate clips a sharded model only when handed exactly the prepared
    model's parameters; the list genrec took before prepare (the trainable ones) was not
    that list, and with FSDP2's replaced parameters it clipped nothing."""
    from accelerate import Accelerator

    seen = []
    clip = Accelerator.clip_grad_norm_

    def spy(self, parameters, max_norm, norm_type=2):
        parameters = list(parameters)
        prepared = list(self._models[0].parameters())
        seen.append(len(parameters) == len(prepared) and all(a is b for a, b in zip(parameters, prepared, strict=True)))
        return clip(self, parameters, max_norm, norm_type)

    monkeypatch.setattr(Accelerator, "clip_grad_norm_", spy)
    train(bundled_dir, tmp_path / "run", cfg(max_steps=2, save_every=None))  # 2 micro-batches a step
    assert seen == [True, True]


# --- checkpoints: save_state / load_state, generator states included ---------------------

@pytest.fixture(scope="module")
def full_and_cut(bundled_dir, tmp_path_factory):
    """A 6-step run, and the same run interrupted after step 3 (checkpoint step-3)."""
    root = tmp_path_factory.mktemp("resume")
    c = cfg(max_steps=6, lr=1e-2)
    train(bundled_dir, root / "full", c)

    def interrupt(step):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(bundled_dir, root / "cut", c, on_step=interrupt)
    return c, root / "full", root / "cut"


@requires_packaged
def test_a_checkpoint_is_accelerates_state_with_only_the_trained_weights(full_and_cut):
    from safetensors.torch import load_file

    _, _, cut = full_and_cut
    ckpt = cut / "checkpoints" / "step-3"
    names = {p.name for p in ckpt.iterdir()}
    assert {"model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl", "state.json"} <= names
    assert "adapter" not in names
    weights = load_file(ckpt / "model.safetensors")
    assert weights and all("lora_" in k for k in weights)  # not the frozen backbone
    assert json.loads((ckpt / "state.json").read_text())["step"] == 3


@requires_packaged
def test_resume_through_load_state_continues_the_same_losses(bundled_dir, full_and_cut, tmp_path):
    c, full, cut = full_and_cut
    info = json.loads((cut / "run.json").read_text())
    assert info["status"] == "interrupted" and info["steps_done"] == 3
    resumed = tmp_path / "resumed"
    shutil.copytree(cut, resumed)
    train(bundled_dir, resumed, c, resume=True)
    want, got = losses(full), losses(resumed)
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    steps = [e["step"] for e in RunDir(resumed).read_log() if e["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]  # each step logged once, in order, across the interruption
    for step in (4, 5, 6):
        assert got[step] == pytest.approx(want[step], rel=1e-6, abs=1e-7)
    a, b = adapter(full), adapter(resumed)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    # the generator states are what makes it equal: without them dropout draws other masks
    no_rng = tmp_path / "no-rng"
    shutil.copytree(cut, no_rng)
    (no_rng / "checkpoints" / "step-3" / "random_states_0.pkl").unlink()
    train(bundled_dir, no_rng, c, resume=True)
    assert losses(no_rng)[4] != pytest.approx(want[4], rel=1e-6, abs=1e-7)


def _to_legacy(ckpt: Path, adapter_config: Path) -> None:
    """Rewrite a save_state checkpoint as genrec wrote checkpoints before (adapter/ in PEFT
    format, optimizer.pt, scheduler.pt, rng-0.pt)."""
    from safetensors.torch import load_file, save_file

    weights = load_file(ckpt / "model.safetensors")
    (ckpt / "adapter").mkdir()
    # model.base_model.model....lora_A.default.weight -> base_model.model....lora_A.weight (PEFT's file)
    save_file({k.removeprefix("model.").replace(".default.", "."): v for k, v in weights.items()},
              ckpt / "adapter" / "adapter_model.safetensors")
    shutil.copy(adapter_config, ckpt / "adapter" / "adapter_config.json")
    torch.save(torch.load(ckpt / "optimizer.bin", weights_only=False), ckpt / "optimizer.pt")
    torch.save(torch.load(ckpt / "scheduler.bin", weights_only=False), ckpt / "scheduler.pt")
    rng = torch.load(ckpt / "random_states_0.pkl", weights_only=False)
    torch.save({"python": rng["random_state"], "numpy": rng["numpy_random_seed"], "torch": rng["torch_manual_seed"]}, ckpt / "rng-0.pt")
    for name in ("model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"):
        (ckpt / name).unlink()


@requires_packaged
def test_a_checkpoint_from_before_save_state_still_resumes(bundled_dir, full_and_cut, tmp_path):
    c, full, cut = full_and_cut
    old = tmp_path / "old"
    shutil.copytree(cut, old)
    _to_legacy(old / "checkpoints" / "step-3", full / "adapter" / "adapter_config.json")
    train(bundled_dir, old, c, resume=True)
    want, got = losses(full), losses(old)
    for step in (4, 5, 6):
        assert got[step] == pytest.approx(want[step], rel=1e-6, abs=1e-7)
    a, b = adapter(full), adapter(old)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    # its next checkpoint is in the new format
    assert (old / "checkpoints" / "step-6" / "random_states_0.pkl").is_file()


# --- trackers ------------------------------------------------------------------------------

def test_trackers_are_validated():
    with pytest.raises(ConfigError, match="log_with") as e:
        TrainConfig.build({"log_with": "mlflow"})
    assert "'tensorboard' or 'wandb'" in str(e.value)
    assert TrainConfig.build({}).log_with is None
    assert TrainConfig.build({"log_with": "none"}).log_with is None
    assert TrainConfig.build({"log_with": "tensorboard, wandb"}).log_with == ["tensorboard", "wandb"]
    assert TrainConfig.build({"log_with": ["wandb", "wandb"]}).log_with == ["wandb"]


def test_a_tracker_without_its_package_is_refused_before_anything_is_written(bundled_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now fails, as when it is not installed
    with pytest.raises(GenrecError, match="pip install wandb"):
        train(bundled_dir, tmp_path / "run", cfg(max_steps=1, log_with=["wandb"]))
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(GenrecError, match="pip install tensorboard"):
        train(bundled_dir, tmp_path / "run", cfg(max_steps=1, log_with=["tensorboard"]))
    assert not (tmp_path / "run").exists()


@requires_packaged
@pytest.mark.filterwarnings("ignore:`log_with=.*no supported trackers")  # Accelerate's, when tensorboard is not installed
def test_every_log_line_goes_to_the_trackers(bundled_dir, tmp_path, monkeypatch):
    from accelerate import Accelerator

    from genrec.training import loop

    monkeypatch.setattr(loop, "check_trackers", lambda names: None)  # whether tensorboard is installed does not matter
    started, logged = [], []
    monkeypatch.setattr(Accelerator, "init_trackers", lambda self, name, config=None, init_kwargs=None: started.append((name, config)))
    monkeypatch.setattr(Accelerator, "log", lambda self, values, step=None, log_kwargs=None: logged.append((step, values)))
    run = tmp_path / "run"
    train(bundled_dir, run, cfg(max_steps=2, save_every=None, log_with=["tensorboard"], eval_every=2, eval_users=4, eval_decode=False))
    assert started and started[0][0] == "genrec"
    config = started[0][1]
    assert config["lora.r"] == 8 and config["lora.target_modules"] == "q_proj,v_proj,o_proj" and config["log_with"] == "tensorboard"
    log = RunDir(run).read_log()
    assert [step for step, _ in logged] == [e["step"] for e in log] == [1, 2, 2]
    for (_, values), entry in zip(logged, log, strict=True):
        key = "loss" if entry["kind"] == "train" else "valid_loss"
        assert values[f"{entry['kind']}/{key}"] == entry[key]
        assert all(isinstance(v, int | float) for v in values.values())


@requires_packaged
def test_tensorboard_writes_event_files_in_the_run(bundled_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    train(bundled_dir, run, cfg(max_steps=2, save_every=None, log_with=["tensorboard"]))
    assert list((run / "logs").rglob("events.out.tfevents.*"))
    events = EventAccumulator(str(run / "logs" / "genrec"))
    events.Reload()
    scalars = {e.step: e.value for e in events.Scalars("train/loss")}
    assert scalars == pytest.approx(losses(run), rel=1e-5)
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


# --- the prepared GPU script --------------------------------------------------------------

GPU_CHECK = REPO / "bench" / "gpu_check.sh"


def test_gpu_check_script_parses_and_sets_real_fields():
    done = subprocess.run(["bash", "-n", str(GPU_CHECK)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = GPU_CHECK.read_text()
    keys = set(re.findall(r"--set ([a-z_.]+)=", text))
    assert {"batch_size", "effective_batch", "eval_every"} <= keys
    unknown = [k for k in keys if k.split(".")[0] not in TrainConfig.model_fields]
    assert not unknown, f"gpu_check.sh sets fields TrainConfig does not have: {unknown}"


@pytest.mark.slow
@requires_packaged
def test_gpu_check_script_runs_end_to_end_on_cpu(tmp_path):
    """The GPU script's --cpu mode: single-process train and evaluate, two gloo processes
    (train, resume, sharded evaluate), FSDP reported as not possible on a CPU."""
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    out = tmp_path / "gpu-check"
    done = subprocess.run(["bash", str(GPU_CHECK), "--cpu", "--out", str(out), "--work", str(tmp_path / "work")],
                          env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = (out / "summary.txt").read_text()
    assert "FAIL" not in summary and "PASS a-train" in summary and "PASS b-evaluate" in summary
    assert "SKIP c: FSDP cannot run on a CPU" in summary
