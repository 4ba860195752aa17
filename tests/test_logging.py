import json

import torch
from support import tiny_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from videogan.data.batches import ClipBatches
from videogan.training.callbacks import JsonlLog, TensorBoardLog
from videogan.training.loop import OutputPaths, Trainer

EXPECTED = {
    "loss_critic",
    "loss_generator",
    "wasserstein",
    "gradient_penalty",
    "grad_norm_critic",
    "grad_norm_decoder",
    "grad_norm_lstm",
    "sigma",
    "critic_steps",
    "generator_steps",
    "it_per_s",
    "videos_per_s",
    "lr_critic",
    "lr_decoder",
    "lr_lstm",
}


def test_tensorboard_gets_scalars_and_a_gif_video(tmp_path, squares):
    cfg = tiny_config(train={"iterations": 4, "video_every": 2})
    paths = OutputPaths.under(tmp_path)
    Trainer(cfg, ClipBatches(squares, 8, 8), paths, [TensorBoardLog(paths.tensorboard)], say=lambda *_: None).fit()
    events = EventAccumulator(str(paths.tensorboard), size_guidance={"images": 0, "scalars": 0}).Reload()
    assert {f"train/{k}" for k in EXPECTED} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/loss_critic")] == [1, 2, 3, 4]
    videos = events.Images("samples")
    assert [v.step for v in videos] == [0, 2, 4]
    assert videos[0].encoded_image_string[:6] in (b"GIF87a", b"GIF89a")  # moviepy rendered it
    assert (videos[0].width, videos[0].height) > (16, 16)


def test_jsonl_log_has_one_line_per_log_step_with_every_metric(tmp_path, squares):
    cfg = tiny_config(train={"iterations": 6, "log_every": 2})
    paths = OutputPaths.under(tmp_path)
    Trainer(cfg, ClipBatches(squares, 8, 8), paths, [JsonlLog(paths.log)], say=lambda *_: None).fit()
    rows = [json.loads(line) for line in paths.log.read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert all(EXPECTED <= r.keys() and all(isinstance(v, (int, float)) for v in r.values()) for r in rows)
    assert all(torch.isfinite(torch.tensor(r["loss_critic"])) for r in rows)
