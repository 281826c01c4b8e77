"""Sharding evaluation users across processes started by ``torchrun`` or ``accelerate launch``.

genrec writes no cluster code of its own (DESIGN.md, "Scale"): the launcher starts the
processes and sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``; torch.distributed
connects them. Rank r evaluates every world_size-th user; the per-user lists are gathered
to rank 0, which computes the metrics on exactly the rows a single process would have seen.

On a machine with GPUs each process gets its own: :func:`bind_device` takes the device
Accelerate's ``PartialState`` assigns (``cuda:LOCAL_RANK``, modulo the GPUs there) and
makes it the current CUDA device, so a method that asks for ``"cuda"`` (the default of
every method that uses a GPU) lands on its process's GPU instead of every rank on cuda:0.
"""

from __future__ import annotations

import sys
from typing import Any


def _dist():
    """torch.distributed if a process group can exist (never imports torch itself:
    evaluating popularity should not pay for importing it)."""
    if "torch" not in sys.modules:
        return None
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def init(world_size: int) -> bool:
    """Join the launcher's process group (gloo: works on CPU, and gathers Python objects
    without touching a GPU) when `world_size` > 1, and give this process its own device
    (:func:`bind_device`). Call it before building the method, which places its model.

    The CLI reads ``WORLD_SIZE`` from the environment and passes it here; an already
    initialised group (e.g. by Accelerate) is used as it is. Returns whether the run is
    distributed.
    """
    if world_size <= 1:
        d = _dist()
        return d is not None and d.get_world_size() > 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    bind_device()
    return True


def bind_device():
    """This process's accelerator, made the current CUDA device; None without a GPU.

    The device is Accelerate's ``PartialState().device`` (rank r of a node: ``cuda:r``
    modulo the GPUs), so evaluation places processes exactly as ``genrec train`` does.
    """
    import torch

    if not torch.cuda.is_available():
        return None
    from accelerate import PartialState

    device = PartialState().device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def rank_and_world() -> tuple[int, int]:
    d = _dist()
    return (d.get_rank(), d.get_world_size()) if d is not None else (0, 1)


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every rank's `obj`, in rank order, on rank 0; None elsewhere (and [obj] when alone)."""
    rank, world = rank_and_world()
    if world == 1:
        return [obj]
    out: list[Any] | None = [None] * world if rank == 0 else None
    _dist().gather_object(obj, out, dst=0)
    return out


def finish() -> None:
    d = _dist()
    if d is not None:
        d.destroy_process_group()
