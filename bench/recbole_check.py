"""Run RecBole's own SASRec on a `genrec export recbole` folder: RecBole reads the files and
trains and tests on exactly genrec's examples (issue 14, item 4).

    genrec export recbole DATA_DIR /tmp/rb/NAME
    python bench/recbole_check.py /tmp/rb/NAME [--epochs 2]      # in an environment with RecBole

RecBole 1.2.1 (the release on PyPI) needs an environment of its own: numpy<2 and
pandas<2.3 (it uses np.float_), setuptools<81, and torch as genrec's; its Trainer's
reload of the best model fails under torch >= 2.6 (torch.load's weights_only default), so
the last epoch's model is tested. Prints RecBole's dataset summary, the number of
train / valid / test examples it loaded, and its test HR@10 / NDCG@10.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("export", type=Path, help="a folder written by genrec export recbole")
    p.add_argument("--epochs", type=int, default=2)
    a = p.parse_args()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    folder = a.export.resolve()
    config = Config(model="SASRec", dataset=folder.name, config_file_list=[str(folder / "recbole.yaml")],
                    config_dict={"data_path": str(folder.parent), "epochs": a.epochs, "train_neg_sample_args": None,
                                 "loss_type": "CE", "metrics": ["Hit", "NDCG"], "topk": [10], "valid_metric": "NDCG@10",
                                 "device": "cpu", "use_gpu": False, "show_progress": False,
                                 "checkpoint_dir": str(folder.parent / "recbole-saved")})
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    print(dataset)
    train, valid, test = data_preparation(config, dataset)
    print(f"RecBole loaded {len(train.dataset):,} / {len(valid.dataset):,} / {len(test.dataset):,} train / valid / test examples")
    trainer = Trainer(config, SASRec(config, train.dataset).to(config["device"]))
    trainer.fit(train, valid, saved=False, show_progress=False)
    result = trainer.evaluate(test, load_best_model=False, show_progress=False)
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
