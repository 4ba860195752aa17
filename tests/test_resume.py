"""Kill-and-resume gives the same numbers; config changes start fresh; bad files are refused."""

import json

import pytest
import torch
from support import every_tensor, tiny_config

from videogan.data.batches import ClipBatches
from videogan.sampling import load_generator
from videogan.training import checkpoint
from videogan.training.callbacks import Callback, JsonlLog
from videogan.training.checkpoint import CheckpointError
from videogan.training.loop import OutputPaths, Trainer, TrainingDiverged

quiet = lambda *_: None  # noqa: E731


class KillAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_log(self, step, metrics):
        if step == self.step:
            raise KeyboardInterrupt


def train(tmp_path, clips, cfg, callbacks=(), **kw):
    paths = OutputPaths.under(tmp_path)
    trainer = Trainer(
        cfg,
        ClipBatches(clips, cfg.train.batch_size, cfg.frames),
        paths,
        [JsonlLog(paths.log), *callbacks],
        say=quiet,
        **kw,
    )
    return trainer, trainer.fit()


def losses(tmp_path):
    rows = [json.loads(line) for line in (tmp_path / "reports/train_log.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss_critic"], r["loss_generator"], r["wasserstein"]) for r in rows]


EVERY_OPTION = {
    "model": {"critic": {"minibatch_std": 4}, "image_critic": {"frames": 2, "widths": [8, 16]}},
    "train": {"augment": {"translation": 0.125, "cutout": 0.25, "colour": True}},
}


R1_RECIPE = {  # non-saturating loss with R1 on both critics, a BatchNorm decoder that decodes all frames at once
    "model": {
        "generator": {"norm": "batch", "lstm_input": "noise", "first_frame": "lstm"},
        "image_critic": {"frames": 2, "widths": [8, 16]},
    },
    "train": {"r1_gamma": 1.0, "gp_every": 2},
}


@pytest.mark.parametrize(
    "loss, options",
    [
        ("wgan-gp", {}),
        ("alternative", {}),
        ("wgan-gp", EVERY_OPTION),
        ("non-saturating", R1_RECIPE),
        ("hinge", {"model": {"generator": {"kind": "layers", "lstm_input": "noise", "norm": "batch"}}}),
    ],
)
def test_killed_and_resumed_equals_unbroken_to_the_bit(tmp_path, squares, loss, options):
    cfg = tiny_config(model=options.get("model", {}), train={"loss": loss, **options.get("train", {})})
    train(tmp_path / "a", squares, cfg)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "b", squares, cfg, [KillAt(8)])  # resume state was written at step 5
    _, result = train(tmp_path / "b", squares, cfg)
    assert result.resumed_from is not None and result.step == 12
    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    a = every_tensor(checkpoint.load(tmp_path / "a/models/checkpoint.pt"))
    b = every_tensor(checkpoint.load(tmp_path / "b/models/checkpoint.pt"))
    assert a.keys() == b.keys() and any(k.startswith("/optimizers/lstm/state") for k in a)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_more_iterations_resume_a_finished_run(tmp_path, squares):
    train(tmp_path, squares, tiny_config(train={"iterations": 6}))
    _, result = train(tmp_path, squares, tiny_config(train={"iterations": 8}))
    assert result.resumed_from is not None
    assert [s for s, *_ in losses(tmp_path)] == list(range(1, 9))


def test_a_changed_learning_rate_starts_fresh(tmp_path, squares):
    train(tmp_path, squares, tiny_config())
    changed = tiny_config(train={"optim": {"critic": {"lr": 1e-3}}})
    trainer, result = train(tmp_path, squares, changed)
    assert result.resumed_from is None
    assert [s for s, *_ in losses(tmp_path)] == list(range(1, 13))
    assert len(list(trainer.paths.resume_dir.glob("*.pt"))) == 2


def test_a_finished_run_with_the_same_config_starts_fresh(tmp_path, squares):
    train(tmp_path, squares, tiny_config(train={"iterations": 4}))
    _, again = train(tmp_path, squares, tiny_config(train={"iterations": 4}))
    assert again.resumed_from is None


def test_fewer_iterations_after_a_finished_run_are_refused_and_the_run_is_kept(tmp_path, squares):
    train(tmp_path, squares, tiny_config(train={"iterations": 10}))
    kept = {p: p.read_bytes() for p in tmp_path.rglob("*.pt")}
    assert len([p for p in kept if p.parent.name == "snapshots"]) == 3  # steps 0, 5, 10
    with pytest.raises(
        CheckpointError,
        match=r"a finished run of this config is at step 10 .*"
        r"train.iterations=5 would replace it.* set train.iterations to 10 "
        r"or more .* to replace it, delete ",
    ):
        train(tmp_path, squares, tiny_config(train={"iterations": 5}))
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.pt")} == kept


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_resume_state_is_a_clear_error(tmp_path, squares, damage):
    cfg = tiny_config()
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, squares, cfg, [KillAt(7)])
    (state,) = (tmp_path / ".videogan/resume").glob("*.pt")
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="unreadable.*truncated or corrupted"):
        train(tmp_path, squares, cfg)
    with pytest.raises(CheckpointError, match="unreadable"):
        load_generator(state)


def test_resume_refuses_a_different_architecture_naming_the_keys(tmp_path, squares):
    train(tmp_path / "a", squares, tiny_config(train={"iterations": 2}))
    wider = tiny_config(model={"generator": {"width": 16}, "critic": {"widths": [8, 16, 32, 64]}})
    with pytest.raises(CheckpointError) as err:
        train(tmp_path / "b", squares, wider, resume_from=tmp_path / "a/models/checkpoint.pt")
    assert "model.generator.width: checkpoint 8 != config 16" in str(err.value)
    assert "model.critic.widths" in str(err.value)


def test_explicit_resume_with_a_new_learning_rate_uses_it(tmp_path, squares):
    train(tmp_path / "a", squares, tiny_config(train={"iterations": 2}))
    changed = tiny_config(train={"iterations": 4, "optim": {"decoder": {"lr": 5e-4}}})
    trainer, result = train(tmp_path / "b", squares, changed, resume_from=tmp_path / "a/models/checkpoint.pt")
    assert result.step == 4
    assert trainer.state.optimizers["decoder"].param_groups[0]["lr"] == 5e-4


def test_a_nan_loss_stops_before_the_update_and_keeps_the_last_good_state(tmp_path, squares):
    cfg = tiny_config()

    class NanAfter(ClipBatches):
        def batch(self, k):
            x = super().batch(k)
            return x * float("nan") if k >= 20 else x

    paths = OutputPaths.under(tmp_path)
    trainer = Trainer(cfg, NanAfter(squares, 8, 8), paths, say=quiet)
    with pytest.raises(TrainingDiverged, match="critic loss became nan at iteration"):
        trainer.fit()
    good = checkpoint.load(trainer.resume_path)
    assert good["step"] == 5
    assert all(torch.isfinite(v).all() for v in good["critic"].values())
    assert all(torch.isfinite(p).all() for p in trainer.state.critic.parameters())
    assert not paths.checkpoint.exists()


def test_snapshots_are_generator_only_and_include_step_zero(tmp_path, squares):
    train(tmp_path, squares, tiny_config())
    names = sorted(p.name for p in (tmp_path / "models/snapshots").glob("*.pt"))
    assert names == ["step_0000000.pt", "step_0000005.pt", "step_0000010.pt"]
    snap = checkpoint.load(tmp_path / "models/snapshots/step_0000005.pt")
    assert snap["kind"] == "generator" and "critic" not in snap
    generator, _, step = load_generator(tmp_path / "models/snapshots/step_0000005.pt")
    assert step == 5 and generator(generator.sample_noise(1)).shape == (1, 1, 8, 16, 16)


# Keys of train.* that change the weights or the batches, and so the training hash; every other train.* key is in
# _NOT_TRAINING_STATE. A new key fails here until it is put on one side: a logging key left out of
# _NOT_TRAINING_STATE would silently discard every resume state.
TRAINING_STATE_SECTIONS = ("train.optim.", "train.clip.", "train.schedule.", "train.instance_noise.", "train.augment.")
TRAINING_STATE_KEYS = {
    "train.batch_size",
    "train.loss",
    "train.gp_lambda",
    "train.r1_gamma",
    "train.seed",
    "train.amp",
    "train.tf32",
    "train.gp_every",
    "train.ema_decay",
}


def test_every_train_key_is_classified_as_training_state_or_not():
    from videogan.config import _NOT_TRAINING_STATE, Config, flatten, to_dict

    train_keys = {k for k in flatten(to_dict(Config())) if k.startswith("train.")}
    unclassified = {
        k for k in train_keys - _NOT_TRAINING_STATE - TRAINING_STATE_KEYS if not k.startswith(TRAINING_STATE_SECTIONS)
    }
    assert not unclassified, f"put these in config._NOT_TRAINING_STATE or in TRAINING_STATE_KEYS: {unclassified}"
    assert _NOT_TRAINING_STATE <= train_keys and not _NOT_TRAINING_STATE & TRAINING_STATE_KEYS


def test_keys_outside_the_training_state_leave_the_hash_alone():
    from videogan.config import _NOT_TRAINING_STATE, training_hash

    base = training_hash(tiny_config())
    changed = {
        "iterations": 7,
        "snapshot_every": 3,
        "resume_every": 3,
        "log_every": 3,
        "video_every": 3,
        "num_workers": 1,
        "device": "cpu",
        "compile": True,
        "compile_mode": "max-autotune",
        "channels_last": False,
    }
    assert {f"train.{k}" for k in changed} == _NOT_TRAINING_STATE
    for key, value in changed.items():
        assert training_hash(tiny_config(train={key: value})) == base, key
    assert training_hash(tiny_config(train={"seed": 9})) != base
