"""search.yaml's validation, the trial's `dvc exp run -S` arguments, and StopTraining in the training loop."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from support import tiny_config

from pipeline.search import dvc_set_params, suggest
from pipeline.search_space import load_search, overrides
from videogan.data.batches import ClipBatches
from videogan.errors import ConfigError
from videogan.training.callbacks import Callback, StopTraining
from videogan.training.loop import OutputPaths, Trainer

REPO = Path(__file__).resolve().parents[1]
VALID = {"study": "s", "trials": 2, "params": {"train.optim.critic.lr": {"low": 1e-4, "high": 1e-3, "log": True}}}


def write(tmp_path: Path, changes: dict) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({**VALID, **changes}))
    return path


def test_the_shipped_search_file_is_valid():
    search = load_search(REPO / "search.yaml", REPO / "params.yaml")
    assert search.objective.metric == "fd_video" and search.trials >= 1 and search.params


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"params": {"train.optim.critic.lrr": {"low": 1, "high": 2}}}, "params.train.optim.critic.lrr: 1 is not"),
        ({"params": {"train.optim.critic.lr": {"low": 1e-3, "high": 1e-4}}}, "params.train.optim.critic.lr: low"),
        ({"params": {"train.optim.critic.lr": {"low": -1.0, "high": 1.0, "log": True}}}, "needs low > 0"),
        ({"params": {"train.loss": {"choices": ["wgan-gp", "lsgan"]}}}, "params.train.loss: 'lsgan' is not accepted"),
        ({"params": {"data.frames": {"low": 8, "high": 12}}}, "params.data.frames: data.*, evaluator.*"),
        ({"params": {}}, "params: Dictionary should have at least 1 item"),
        ({"objective": {"metric": "fid"}}, "objective.metric: 'fid' is not a metric"),
        ({"objective": {"direction": "down"}}, "objective.direction: Input should be 'minimize' or 'maximize'"),
        ({"pruner": {"kind": "hyperband"}}, "pruner.kind: Input should be"),
        ({"trials": 0}, "trials: Input should be greater than or equal to 1"),
        ({"study": "a b"}, "study: String should match pattern"),
        ({"fixed": {"train.iterations": -1}}, "fixed: --set train.iterations=-1: train.iterations"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_a_bad_search_file_is_one_line_naming_the_key(tmp_path, changes, named):
    with pytest.raises(ConfigError) as caught:
        load_search(write(tmp_path, changes), REPO / "params.yaml")
    message = str(caught.value)
    assert named in message and "\n" not in message, message


def test_dvc_sets_every_key_whether_params_yaml_has_it_or_not(tmp_path):
    from pipeline_support import sh

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text("train:\n  iterations: 5\n")
    (repo / "dvc.yaml").write_text(
        "stages:\n  s:\n    cmd: cp params.yaml out.yaml\n    params: [train]\n"
        "    outs:\n      - out.yaml:\n          cache: false\n"
    )
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "s"]):
        sh(repo, *command)
    sh(
        repo,
        "dvc",
        "exp",
        "run",
        "--temp",
        "-n",
        "e",
        *dvc_set_params(["train.iterations=7", "train.optim.critic.lr=0.0003"]),
    )
    ref = sh(repo, "git", "for-each-ref", "--format=%(refname)", "refs/exps/").stdout.split()[0]
    assert yaml.safe_load(sh(repo, "git", "show", f"{ref}:out.yaml").stdout) == {
        "train": {"iterations": 7, "optim": {"critic": {"lr": 0.0003}}}
    }


def test_every_kind_of_range_suggests_values_the_config_takes(tmp_path):
    path = write(
        tmp_path,
        {
            "params": {
                "train.optim.critic.lr": {"low": 1e-4, "high": 1e-3, "log": True},
                "train.schedule.n_critic": {"low": 1, "high": 5},
                "train.gp_lambda": {"low": 10.0, "high": 200.0, "step": 10.0},
                "model.critic.widths": {"choices": [[8, 16, 32, 32], [16, 32, 64, 64]]},
            }
        },
    )
    search = load_search(path, REPO / "params.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        values = {key: suggest(trial, key, space) for key, space in search.params.items()}
        assert isinstance(values["train.schedule.n_critic"], int) and 1 <= values["train.schedule.n_critic"] <= 5
        assert 1e-4 <= values["train.optim.critic.lr"] <= 1e-3
        assert values["train.gp_lambda"] % 10 == 0
        assert values["model.critic.widths"] in ([8, 16, 32, 32], [16, 32, 64, 64])
        # what `dvc exp run -S` receives reads back as the same values
        read = {o.split("=", 1)[0]: yaml.safe_load(o.split("=", 1)[1]) for o in overrides(values)}
        assert read == values, json.dumps(read)


class StopAt(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_snapshot(self, step, path) -> None:
        if step == self.step:
            raise StopTraining(f"stop at {step}")


def test_a_callback_stops_training_as_a_finished_shorter_run(tmp_path, squares):
    cfg = tiny_config(train={"iterations": 9, "snapshot_every": 3})
    paths = OutputPaths.under(tmp_path)
    ended = []

    class Ends(Callback):
        def on_train_end(self, checkpoint, metrics) -> None:
            ended.append(checkpoint)

    trainer = Trainer(cfg, ClipBatches(squares, 8, 8), paths, [StopAt(3), Ends()], say=lambda *_: None)
    result = trainer.fit()
    assert result.step == 3 and result.stopped_early == "stop at 3" and ended == [paths.checkpoint]
    saved = torch.load(paths.checkpoint, weights_only=True)
    assert saved["step"] == 3 and saved["extra"]["stopped_early"] == {"step": 3, "reason": "stop at 3"}
    assert sorted(p.name for p in paths.snapshots.glob("*.pt")) == ["step_0000000.pt", "step_0000003.pt"]
    # run again without the callback: it resumes from step 3 and goes on to train.iterations
    again = Trainer(cfg, ClipBatches(squares, 8, 8), paths, say=lambda *_: None).fit()
    assert (again.step, again.stopped_early) == (9, None)
    assert "stopped_early" not in torch.load(paths.checkpoint, weights_only=True)["extra"]
