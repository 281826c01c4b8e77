"""Run by test_train.py under torchrun: the same training as a one-process run."""

import sys

import torch

from genrec.training.config import TrainConfig
from genrec.training.loop import train

data_dir, run_dir, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(1)
cfg = TrainConfig.build(
    {
        "backbone": "tiny-random-llama", "max_users": 12, "windows": "recent", "windows_per_user": 2,
        "batch_size": batch_size, "effective_batch": 8, "max_steps": 3, "lr": 5e-3, "warmup_steps": 0,
        "lora": {"dropout": 0.0, "target_modules": ["q_proj", "v_proj", "o_proj"]}, "save_every": None,
        "threads": 1,
    }
)
train(data_dir, run_dir, cfg)
