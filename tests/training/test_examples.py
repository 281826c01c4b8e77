import numpy as np
import pytest
import yaml

from genrec.data import Dataset
from genrec.errors import ConfigError
from genrec.training.config import TrainConfig
from genrec.training.examples import build_examples, micro_batches, step_batches


def test_step_batches_are_a_function_of_seed_and_epoch():
    lengths = np.random.default_rng(0).integers(10, 200, size=1000)
    a = step_batches(lengths, 32, seed=1, epoch=0, group_by_length=True)
    b = step_batches(lengths, 32, seed=1, epoch=0, group_by_length=True)
    c = step_batches(lengths, 32, seed=1, epoch=1, group_by_length=True)
    assert len(a) == 1000 // 32
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert any((x != y).any() for x, y in zip(a, c, strict=True))
    seen = np.concatenate(a)
    assert len(np.unique(seen)) == len(seen)  # no example twice in an epoch


def test_length_grouping_reduces_padding():
    lengths = np.random.default_rng(0).integers(10, 200, size=2048)

    def padded(group):
        total = 0
        for step in step_batches(lengths, 32, seed=0, epoch=0, group_by_length=group):
            for mb in micro_batches(step, lengths, 8):
                total += lengths[mb].max() * len(mb)
        return total

    waste_grouped = padded(True) - lengths.sum()
    waste_plain = padded(False) - lengths.sum()
    assert waste_grouped < 0.2 * waste_plain


def test_step_contents_do_not_depend_on_micro_batch_size():
    lengths = np.random.default_rng(0).integers(10, 200, size=256)
    step = step_batches(lengths, 16, seed=0, epoch=0, group_by_length=True)[0]
    a = np.concatenate(micro_batches(step, lengths, 8))
    b = np.concatenate(micro_batches(step, lengths, 4))
    assert sorted(a) == sorted(b) == sorted(step)


def test_windows(bundled_dir):
    ds = Dataset(bundled_dir)
    seqs = ds.sequences
    all_ = build_examples(ds, TrainConfig.build({"windows": "all", "max_users": 5}))
    recent = build_examples(ds, TrainConfig.build({"windows": "recent", "windows_per_user": 2, "max_users": 5}))
    chunks = build_examples(ds, TrainConfig.build({"windows": "chunks", "max_users": 5, "max_history": 4}))
    assert len(recent) == 10
    assert len(all_) > len(chunks) > 0
    assert all(len(e.history) <= 4 for e in chunks)
    # chunks tile each user's training part without overlap and end at its last item
    users = {e.key.split(":")[0] for e in chunks}
    for uid in users:
        u = seqs.user_ids.index(uid)
        train = seqs.items[seqs.offsets[u] : seqs.offsets[u] + seqs.n_train[u]].tolist()
        mine = [e for e in chunks if e.key.split(":")[0] == uid]
        flat = [x for e in mine for x in e.history + [e.target]]
        assert flat == train[len(train) - len(flat) :]
        assert mine[-1].target == train[-1]


def ten_tokens_an_item(e) -> int:
    return 10 * (len(e.history) + 1)


@pytest.mark.parametrize(("cutoff", "cap"), [(60, 10), (200, 4), (250, 50)])
def test_sequences_pack_each_users_training_part_into_the_longest_runs_that_fit(bundled_dir, cutoff, cap):
    ds = Dataset(bundled_dir)
    seqs = ds.sequences
    assert ds.manifest["max_history"] >= 10
    cfg = TrainConfig.build({"windows": "sequences", "loss_on": "items", "max_users": 8, "cutoff_len": cutoff, "max_history": cap})
    runs = build_examples(ds, cfg, ten_tokens_an_item)
    size = min(cutoff // 10, min(cap, ds.manifest["max_history"]) + 1)  # items a run may hold
    users = {e.key.split(":")[0] for e in runs}
    assert len(users) == 8
    for uid in users:
        u = seqs.user_ids.index(uid)
        train = seqs.items[seqs.offsets[u] : seqs.offsets[u] + seqs.n_train[u]].tolist()
        mine = [e for e in runs if e.key.split(":")[0] == uid]
        flat = [x for e in mine for x in e.history + [e.target]]
        # the runs tile the whole training part, oldest first, without overlap
        assert flat == train[len(train) - len(flat) :] and len(train) - len(flat) <= 1
        assert mine[-1].target == train[-1]
        # every run fits and is as long as the cutoff and the cap allow: only the oldest is shorter
        assert all(ten_tokens_an_item(e) <= cutoff and len(e.history) + 1 <= size for e in mine)
        assert all(len(e.history) + 1 == size for e in mine[1:])
        # keys: the target's position in the user's sequence
        assert [int(e.key.split(":")[1]) for e in mine] == list(np.cumsum([len(e.history) + 1 for e in mine]) - 1 + len(train) - len(flat))


def test_sequences_keep_two_items_when_even_those_overrun_the_cutoff(bundled_dir):
    ds = Dataset(bundled_dir)
    cfg = TrainConfig.build({"windows": "sequences", "loss_on": "items", "max_users": 3, "cutoff_len": 16})
    runs = build_examples(ds, cfg, lambda e: 100 * (len(e.history) + 1))
    assert runs and all(len(e.history) == 1 for e in runs)  # the cutoff then cuts them, as it cuts a chunk


def test_sequences_need_a_length_and_every_item_as_a_target(bundled_dir):
    with pytest.raises(ValueError, match="pass `length`"):
        build_examples(Dataset(bundled_dir), TrainConfig.build({"windows": "sequences", "loss_on": "items"}))
    with pytest.raises(ConfigError, match="windows=sequences .* needs loss_on=items"):
        TrainConfig.build({"windows": "sequences", "loss_on": "response"})


def test_training_examples_never_reach_validation_or_test(bundled_dir):
    ds = Dataset(bundled_dir)
    seqs = ds.sequences
    for windows in ("all", "chunks", "recent", "sequences"):
        over = {"loss_on": "items"} if windows == "sequences" else {}
        for e in build_examples(ds, TrainConfig.build({"windows": windows, "max_users": 30, **over}), ten_tokens_an_item):
            uid, pos = e.key.split(":")
            u = seqs.user_ids.index(uid)
            assert int(pos) < seqs.n_train[u]


def test_batch_size_must_divide():
    with pytest.raises(ConfigError, match="not a multiple of batch_size"):
        TrainConfig.build({"batch_size": 8, "effective_batch": 12})


def test_unknown_keys_are_errors():
    with pytest.raises(ConfigError) as e:
        TrainConfig.build({"lrr": 1, "lora": {"rank": 4}})
    assert "lrr: unknown key" in str(e.value) and "lora.rank: unknown key" in str(e.value)


@pytest.mark.parametrize(("override", "first_guess"), [
    ("lr_rate=1e-3", "lr"), ("learning_rate=1e-3", "lr"), ("lora.rank=8", "lora.r"),
    ("lora_r=8", "lora.r"), ("batchsize=4", "batch_size"), ("max_step=10", "max_steps"),
])
def test_unknown_keys_suggest_the_closest_fields(override, first_guess):
    with pytest.raises(ConfigError) as e:
        TrainConfig.build({}, [override])
    key = override.split("=")[0]
    assert e.value.problems[0].startswith(f"{key}: unknown key, did you mean {first_guess}")


def test_an_unknown_key_like_no_field_gets_no_guess():
    with pytest.raises(ConfigError) as e:
        TrainConfig.build({}, ["zzz=1"])
    assert e.value.problems == ["zzz: unknown key (check the spelling)"]


def test_configs_built_directly_also_suggest_fields():
    from genrec.decoding import DecodingConfig

    with pytest.raises(ConfigError, match="beam: unknown key, did you mean beams"):
        DecodingConfig(beam=3)


def _train_cli(*args):
    from typer.testing import CliRunner

    from genrec.cli import _register, app

    _register()
    return CliRunner().invoke(app, ["train", "unused-data-dir", *args])


def test_train_reads_a_config_file_with_config(tmp_path):
    shown = _train_cli("--preset", "cpu", "--set", "lr=0.0042", "--show-config")
    assert shown.exit_code == 0, shown.output
    config = tmp_path / "mine.yaml"
    config.write_text(shown.stdout, encoding="utf-8")
    r = _train_cli("--config", str(config), "--show-config")
    assert r.exit_code == 0, r.output
    assert TrainConfig.model_validate(yaml.safe_load(r.stdout)).lr == 0.0042
    assert r.stdout == _train_cli("--preset", str(config), "--show-config").stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--config", "missing.yaml"], "--config missing.yaml does not exist"),
    (["--config", "cpu"], "--config cpu is not a .yaml file"),
    (["--config", "x.yaml", "--preset", "cpu"], "both --config x.yaml and --preset cpu are given"),
    (["--preset", "cpu", "--set", "lr_rate=1e-3"], "lr_rate: unknown key, did you mean lr?"),
])
def test_train_config_mistakes_are_named(args, message):
    r = _train_cli(*args, "--show-config")
    assert r.exit_code == 2 and message in r.stderr


def test_train_set_gives_the_preset_plus_the_settings():
    from genrec.training.config import from_preset

    r = _train_cli("--preset", "cpu", "--set", "lr=0.001", "--set", "lora.r=4", "--show-config")
    assert r.exit_code == 0, r.output
    want = from_preset("cpu")
    want.lr, want.lora.r = 0.001, 4
    assert TrainConfig.model_validate(yaml.safe_load(r.stdout)).model_dump() == want.model_dump()
    # the library's overrides are the same KEY=VALUE strings, read by the same parser
    assert from_preset("cpu", overrides=["lr=0.001", "lora.r=4"]).model_dump() == want.model_dump()


def test_train_settings_written_without_set_name_the_set_form():
    # positional KEY=VALUE, as genrec train once took them
    r = _train_cli("--preset", "cpu", "lr=0.001", "lora.r=4", "--show-config")
    assert r.exit_code == 2, r.output
    assert "not as positional KEY=VALUE arguments: lr=0.001 lora.r=4" in r.stderr
    assert "fix: write --set lr=0.001 --set lora.r=4" in r.stderr
    # a field written as an option
    for args, fix in [(["--lr", "0.001"], "--set lr=0.001"), (["--max-minutes=5"], "--set max_minutes=5"),
                      (["--lora.r", "4"], "--set lora.r=4"), (["--no-group-by-length"], "--set group_by_length=false")]:
        r = _train_cli("--preset", "cpu", *args, "--show-config")
        assert r.exit_code == 2 and f"fix: write {fix}" in r.stderr, (args, r.output)
    # an option that names no field keeps click's own message
    r = _train_cli("--preset", "cpu", "--bogus", "--show-config")
    assert r.exit_code == 2 and "is a setting" not in r.stderr
    # an extra argument that is no setting either
    r = _train_cli("--preset", "cpu", "another-dir", "--show-config")
    assert r.exit_code == 2 and "unexpected extra argument (another-dir)" in r.stderr


@pytest.mark.parametrize("preset", ["paper", "recommended", "cpu", "cpu-long", "cpu-titles"])
def test_presets_validate(preset):
    from genrec.config import load_preset

    cfg = TrainConfig.build(load_preset("train", preset))
    assert cfg.effective_batch % cfg.batch_size == 0


def test_paper_preset_has_the_papers_settings():
    from genrec.config import load_preset

    cfg = TrainConfig.build(load_preset("train", "paper"))
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (8, 16, 0.05)
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert (cfg.lr, cfg.epochs, cfg.effective_batch, cfg.warmup_steps, cfg.cutoff_len) == (3e-4, 3, 128, 100, 256)
    assert cfg.loss_on == "all"


def test_train_help_is_generated_from_the_config():
    from typer.testing import CliRunner

    from genrec.cli import _register, app

    _register()
    help_text = " ".join(CliRunner().invoke(app, ["train", "--help"], terminal_width=400).stdout.split())
    dotted = [line.split("=", 1)[0] for line in TrainConfig.field_help().splitlines()]
    assert "lora.r" in dotted and "finetune" in dotted and "num_layers" in dotted
    missing = [f for f in dotted if f not in help_text]
    assert not missing, f"train --help misses {missing}"
    r = CliRunner().invoke(app, ["train", "--fields"])  # no data folder needed
    assert r.exit_code == 0
    for name, field in TrainConfig.model_fields.items():
        if field.description:
            assert f"{name}=" in r.stdout and field.description[:30] in " ".join(r.stdout.split())
