"""Pixel SAC: one encoder for actor and critics, trained by the critic loss only; DrQ shifts."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import Transition, load_agent, make_agent
from agents.networks import random_shift, soft_update


def _pixel_sac(image_size=16, **config):
    obs_space = gym.spaces.Dict({
        "tcp_pose": gym.spaces.Box(-np.inf, np.inf, (6,), np.float32),
        "wrist": gym.spaces.Box(0, 255, (image_size, image_size, 1), np.uint8),
    })
    act_space = gym.spaces.Box(-1, 1, (3,), np.float32)
    obs_space.seed(0)
    act_space.seed(0)
    agent = make_agent("sac", obs_space, act_space,
                       {"learning_starts": 0, "random_steps": 0, "batch_size": 8,
                        "hidden": (16,), "image_feature_dim": 8, **config})
    for _ in range(32):
        agent.observe(Transition(obs_space.sample(), act_space.sample(), 1.0,
                                 obs_space.sample(), False, False, {}))
    return agent


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def test_one_encoder_serves_actor_critic_and_targets():
    agent = _pixel_sac()
    assert agent.actor.encoder is agent.critic.encoder is agent.target_critic.encoder
    assert not any(p is q for p in agent.target_critic.heads.parameters()
                   for q in agent.critic.heads.parameters())
    assert all(p.requires_grad for p in agent.encoder.parameters())


def test_only_the_critic_loss_moves_the_encoder():
    # With a vanishing critic learning rate, whatever moves the encoder must come from the actor.
    agent = _pixel_sac(critic_lr=1e-30)
    encoder, actor_head = _params(agent.encoder), _params(agent.actor.net)
    for _ in range(3):
        agent.update()
    moved = max((a - b).abs().max().item()
                for a, b in zip(encoder, _params(agent.encoder), strict=True))
    assert moved < 1e-20  # Adam moves each parameter by ~lr: 1e-30 from the critic only
    assert any(not torch.equal(a, b)
               for a, b in zip(actor_head, _params(agent.actor.net), strict=True))
    # ...and with a normal one, the critic does train it.
    agent = _pixel_sac()
    encoder = _params(agent.encoder)
    agent.update()
    assert any(not torch.equal(a, b)
               for a, b in zip(encoder, _params(agent.encoder), strict=True))


def test_random_shift_is_an_edge_replicating_crop_per_image():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 12, 10, 3), dtype=torch.uint8, generator=generator)
    pad = 2
    shifted = random_shift(images, pad, generator)
    assert shifted.dtype == torch.uint8 and shifted.shape == images.shape
    padded = torch.nn.functional.pad(
        images.permute(0, 3, 1, 2).float(), (pad,) * 4, mode="replicate"
    ).permute(0, 2, 3, 1)
    offsets = set()
    for image, out in zip(padded, shifted, strict=True):
        matches = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                   if torch.equal(image[dy:dy + 12, dx:dx + 10], out.float())]
        assert matches, "an output image is not a crop of the padded input"
        offsets.add(matches[0])
    assert len(offsets) > 10  # images are shifted independently
    assert random_shift(images, 0) is images


def test_bf16_convs_keep_float32_weights_and_track_the_float32_encoder():
    """`bf16_convs` only changes the arithmetic of the convolutions: the same weights give
    features within bfloat16 rounding of float32's, and the critic still trains the encoder."""
    fp32, bf16 = _pixel_sac(), _pixel_sac(bf16_convs=True)
    bf16.encoder.load_state_dict(fp32.encoder.state_dict())
    images = {"tcp_pose": torch.zeros(4, 6),
              "wrist": torch.randint(0, 256, (4, 16, 16, 1), dtype=torch.uint8)}
    with torch.no_grad():
        exact, rounded = fp32.encoder(images), bf16.encoder(images)
    assert rounded.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in bf16.encoder.parameters())
    assert 0 < (exact - rounded).abs().max().item() < 0.05  # tanh features in [-1, 1]
    encoder = _params(bf16.encoder)
    bf16.update()
    assert any(not torch.equal(a, b)
               for a, b in zip(encoder, _params(bf16.encoder), strict=True))


def test_random_shift_is_reproducible_under_a_seed_for_any_image_shape():
    images = torch.randint(0, 256, (32, 9, 13, 2), dtype=torch.uint8)
    first = random_shift(images, 3, torch.Generator().manual_seed(7))
    again = random_shift(images, 3, torch.Generator().manual_seed(7))
    other = random_shift(images, 3, torch.Generator().manual_seed(8))
    assert first.shape == images.shape and first.is_contiguous()
    assert torch.equal(first, again) and not torch.equal(first, other)
    # a pad wider than the image: still a crop of the edge-replicated image
    pad, few = 11, images[:4]
    wide = random_shift(few, pad, torch.Generator().manual_seed(7))
    padded = torch.nn.functional.pad(few.permute(0, 3, 1, 2).float(), (pad,) * 4,
                                     mode="replicate").permute(0, 2, 3, 1)
    for image, out in zip(padded, wide, strict=True):
        assert any(torch.equal(image[dy:dy + 9, dx:dx + 13], out.float())
                   for dy in range(2 * pad + 1) for dx in range(2 * pad + 1))


def test_strided_encoder_is_cheaper_refuses_small_images_and_is_shared():
    from agents.networks import ImageEncoder

    drq = ImageEncoder((64, 64, 3), 50, 32, architecture="drq")
    strided = ImageEncoder((64, 64, 3), 50, 32, architecture="strided")
    assert strided(torch.zeros(2, 64, 64, 3, dtype=torch.uint8)).shape == (2, 50)
    assert sum(p.numel() for p in strided.parameters()) < sum(p.numel() for p in drq.parameters())
    with pytest.raises(ValueError, match="too small"):
        ImageEncoder((16, 16, 1), architecture="strided")
    with pytest.raises(ValueError, match="unknown"):
        ImageEncoder((64, 64, 3), architecture="resnet")
    agent = _pixel_sac(image_encoder="strided", image_size=24)
    assert agent.actor.encoder is agent.critic.encoder is agent.target_critic.encoder


def test_soft_update_is_polyak_averaging_bitwise():
    """target <- target.lerp(source, tau), the same bits as one lerp_ per tensor; a mismatched
    pair of networks is refused."""
    torch.manual_seed(0)
    source, target = (torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.LayerNorm(7))
                      for _ in range(2))
    expected = [t.detach().clone().lerp_(s.detach(), 0.005)
                for t, s in zip(target.parameters(), source.parameters(), strict=True)]
    soft_update(target, source, 0.005)
    for got, want in zip(target.parameters(), expected, strict=True):
        assert torch.equal(got, want)
    with pytest.raises(ValueError, match="target parameters"):
        soft_update(torch.nn.Linear(5, 7), source, 0.005)


def test_fused_adam_steps_within_float32_rounding_of_the_unfused_step():
    """SAC's optimizers are fused; three pixel-SAC updates with PyTorch's unfused Adam (same
    weights, batches, seeds and learning rates) land on the same weights up to float32
    rounding."""
    fused, plain = _pixel_sac(), _pixel_sac()
    for name in ("actor", "critic", "target_critic", "temperature"):
        getattr(plain, name).load_state_dict(getattr(fused, name).state_dict())
    for name in ("actor_opt", "critic_opt", "alpha_opt"):
        group = getattr(fused, name).param_groups[0]
        assert group["fused"]
        setattr(plain, name, torch.optim.Adam(getattr(plain, name).param_groups[0]["params"],
                                              lr=group["lr"], fused=False))
    before = _params(fused.critic)
    for agent in (fused, plain):
        torch.manual_seed(1)  # the random shifts and the actor's samples
        for _ in range(3):
            agent.update()
    for name in ("actor", "critic", "temperature"):
        for a, b in zip(_params(getattr(fused, name)), _params(getattr(plain, name)),
                        strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert any(not torch.equal(a, b) for a, b in zip(before, _params(fused.critic), strict=True))


def test_a_checkpoint_saved_with_unfused_adam_resumes_unfused_and_exactly(tmp_path):
    names = ("actor_opt", "critic_opt", "alpha_opt")
    old = _pixel_sac()
    for name in names:  # as agents were saved before SAC's optimizers were fused
        group = getattr(old, name).param_groups[0]
        setattr(old, name, torch.optim.Adam(group["params"], lr=group["lr"]))
    old.update()
    old.save(tmp_path / "old", include_replay=True)
    resumed = load_agent(tmp_path / "old")
    assert not any(getattr(resumed, name).param_groups[0]["fused"] for name in names)
    for agent in (old, resumed):
        torch.manual_seed(3)
        agent.update()
    for a, b in zip(_params(old.critic), _params(resumed.critic), strict=True):
        assert torch.equal(a, b)
    new = _pixel_sac()
    new.save(tmp_path / "new")
    assert all(getattr(load_agent(tmp_path / "new"), name).param_groups[0]["fused"]
               for name in names)
