import pytest
import torch
from support import tiny_config

from videogan.losses import critic_loss, generator_loss
from videogan.models import build_critic, build_generator
from videogan.models.generator import decoder_widths


@pytest.mark.parametrize("frames,size,channels", [(8, 16, 1), (10, 32, 3), (12, 16, 3), (20, 64, 1), (16, 128, 1)])
@pytest.mark.parametrize("lstm_input", ["frame", "noise", "none"])
def test_generator_and_critic_shapes(frames, size, channels, lstm_input):
    cfg = tiny_config(
        data={"frames": frames, "frame_size": size, "channels": channels},
        model={"generator": {"lstm_input": lstm_input}},
    )
    g, d = build_generator(cfg), build_critic(cfg)
    video = g(g.sample_noise(2))
    assert video.shape == (2, channels, frames, size, size)
    assert video.abs().max() <= 1
    assert d(video).shape == (2,)


@pytest.mark.parametrize("size", [16, 32])
def test_nearest_upsampling_decoder_has_no_transposed_convolutions(size):
    cfg = tiny_config(data={"frames": 8, "frame_size": size}, model={"generator": {"upsample": "nearest"}})
    g = build_generator(cfg)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules())
    assert (
        sum(isinstance(m, torch.nn.Upsample) for m in g.modules()) == {16: 2, 32: 3}[size]
    )  # one per doubling from 4x4
    assert g(g.sample_noise(2)).shape == (2, 1, 8, size, size)


def test_full_size_defaults_match_the_original():
    from videogan.config import Config

    cfg = Config()
    g = build_generator(cfg)
    assert (cfg.data.frames, cfg.data.frame_size, cfg.train.batch_size) == (20, 64, 64)
    assert g.noise_dim == 256 and g.lstm.hidden_size == 128
    assert decoder_widths(64, 64, 512) == [512, 512, 256, 128, 64]
    assert [m.out_channels for m in build_critic(cfg).features if isinstance(m, torch.nn.Conv3d)] == [64, 128, 256, 512]


def test_lstm_forget_gate_starts_at_one():
    g = build_generator(tiny_config())
    assert torch.all(g.lstm.gate_shift[2] == 1.0)
    assert torch.all(g.lstm.gate_shift[[0, 1, 3]] == 0.0)


def test_content_code_is_fixed_and_motion_changes_frames():
    g = build_generator(tiny_config(model={"generator": {"lstm_input": "none"}}))
    z = g.sample_noise(1)
    video = g(z)
    assert not torch.allclose(video[:, :, 0], video[:, :, -1])  # the LSTM moves the state


@pytest.mark.parametrize("lstm_input", ["frame", "noise", "none"])
def test_first_frame_from_an_lstm_step_is_decoded_like_every_later_frame(lstm_input):
    raw = build_generator(tiny_config(model={"generator": {"lstm_input": lstm_input}}))
    stepped = build_generator(tiny_config(model={"generator": {"lstm_input": lstm_input, "first_frame": "lstm"}}))
    stepped.load_state_dict(raw.state_dict())  # the same weights: only where frame 0 comes from differs
    z = raw.sample_noise(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        first = {"frame": torch.zeros(2, 16 * 16), "noise": z[:, 32:48], "none": None}[lstm_input]
        h, c = stepped.lstm(first, (z[:, :16], z[:, :16]))
        frame0 = stepped.decoder(torch.cat([h, z[:, 16:32]], dim=1))
        assert torch.allclose(stepped(z)[:, :, 0], frame0, atol=1e-6)
        assert not torch.allclose(raw(z)[:, :, 0], frame0, atol=1e-3)


@pytest.mark.parametrize("loss", ["wgan-gp", "basic", "alternative", "non-saturating", "hinge"])
def test_gradients_reach_the_lstm_under_every_loss(loss):
    cfg = tiny_config(train={"loss": loss})
    g, d = build_generator(cfg), build_critic(cfg)
    scores = d(g(g.sample_noise(4, torch.Generator().manual_seed(0))))
    generator_loss(loss, scores).backward()
    for name, p in g.lstm.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_a_batch_norm_decoder_normalises_over_the_batch_and_keeps_running_statistics():
    g = build_generator(tiny_config(model={"generator": {"norm": "batch"}}))
    norms = [m for m in g.decoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == len(decoder_widths(16, 4, 16))  # the stem's and one per doubling
    g(g.sample_noise(3, torch.Generator().manual_seed(0)))
    assert all(int(m.num_batches_tracked) == g.frames for m in norms)  # `frame` input: one decode per frame
    layer = build_generator(tiny_config())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in layer.decoder.modules())


def test_critic_loss_uses_one_logit_for_bce_losses():
    real, fake = torch.tensor([3.0, 2.0]), torch.tensor([-2.0, -3.0])
    assert critic_loss("basic", real, fake) < critic_loss("basic", fake, real)
    labels = torch.tensor([0.8, 0.9])
    assert critic_loss("alternative", real, fake, labels) > 0


@pytest.mark.parametrize("scheme", ["glorot", "dcgan"])
def test_initialisation_schemes(scheme):
    d = build_critic(tiny_config(model={"init": scheme}))
    w = d.features[0].weight
    if scheme == "dcgan":
        assert abs(w.std().item() - 0.02) < 0.005
    else:
        fan_in, fan_out = w.shape[1] * w[0, 0].numel(), w.shape[0] * w[0, 0].numel()
        assert w.abs().max() <= (6 / (fan_in + fan_out)) ** 0.5


def test_minibatch_stddev_sees_a_collapsed_batch_and_couples_the_scores():
    from videogan.models.critic import Critic, minibatch_stddev

    torch.manual_seed(0)
    diverse = torch.randn(8, 1, 8, 16, 16)
    collapsed = diverse[:1].expand(8, -1, -1, -1, -1)
    spread = lambda x: minibatch_stddev(x, 4)[:, -1]  # noqa: E731  the added map
    assert minibatch_stddev(diverse, 4).shape == (8, 2, 8, 16, 16)
    assert spread(collapsed).max() < 1e-3 < spread(diverse).min()
    assert minibatch_stddev(diverse[:6], 4).shape == (6, 2, 8, 16, 16)  # groups of 2 where 4 do not divide 6
    on = Critic(8, 16, 1, (8, 16, 32, 32), dropout=0.0, minibatch_std=4).eval()
    off = Critic(8, 16, 1, (8, 16, 32, 32), dropout=0.0).eval()
    assert on.feature_dim == off.feature_dim + off.feature_dim // 32
    changed = diverse.clone()
    changed[4] = torch.randn_like(changed[4])  # another video in sample 0's group (0, 4 of groups of 4 strided by 2)
    assert not torch.allclose(on(diverse)[0], on(changed)[0])
    assert torch.equal(off(diverse)[0], off(changed)[0])


def layered(**changes):
    generator = {"kind": "layers", "lstm_input": "none", **changes}
    return build_generator(tiny_config(model={"generator": generator}))


@pytest.mark.parametrize("lstm_input", ["none", "noise"])
def test_the_layers_generator_makes_videos_of_the_data_shape_that_reach_every_part(lstm_input):
    g = layered(lstm_input=lstm_input)
    video = g(g.sample_noise(3, torch.Generator().manual_seed(0)))
    assert video.shape == (3, 1, 8, 16, 16) and video.abs().max() <= 1
    video.mean().backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_the_layers_generator_moves_its_parts_and_changes_nothing_else():
    """Without shifts every frame is the same picture: what the parts show is fixed for the whole video."""
    g = layered(sprites=3)
    z = g.sample_noise(2, torch.Generator().manual_seed(1))
    with torch.no_grad():
        moving = g(z)
        g.place.weight.zero_()
        g.place.bias.zero_()
        still = g(z)
    assert not torch.allclose(moving[:, :, 0], moving[:, :, -1], atol=1e-3)
    torch.testing.assert_close(still, still[:, :, :1].expand_as(still))


def test_the_layers_generator_refuses_frame_input_and_too_little_content():
    from videogan.config import ConfigError

    with pytest.raises(ConfigError, match="lstm_input 'frame' needs kind 'frames'"):
        tiny_config(model={"generator": {"kind": "layers"}})
    with pytest.raises(ConfigError, match="content_dim 2 is too small for 2 sprites and a background"):
        tiny_config(model={"generator": {"kind": "layers", "lstm_input": "none", "content_dim": 2}})


@pytest.mark.parametrize("scale", [0.25, 0.5, 1.0])
def test_sprites_stay_whole_in_the_frame_on_a_black_ground(scale):
    g = layered(sprite_scale=scale, background="black", lstm_input="noise")
    z = g.sample_noise(4, torch.Generator().manual_seed(2))
    centres = g.centres(z[:, : g.motion_dim], z[:, g.noise_dim :].reshape(4, g.frames, -1))
    assert centres.shape == (4, g.frames, 2, 2) and centres.abs().max() <= 1 - scale + 1e-6
    assert g.decoder["sprite"].to_frame.out_channels == 2  # grey and alpha
    with torch.no_grad():
        g.decoder["sprite"].to_frame.bias.fill_(-50.0)  # alpha 0 everywhere: only the background shows
        video = g(z)
    torch.testing.assert_close(video, torch.full_like(video, -1.0))
