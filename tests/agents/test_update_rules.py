"""The learners' update rules against their papers, on hand-made batches.

Every critic's output layer is zeroed to a constant (its bias), so each TD target and each actor
loss is a number the paper's formula gives in closed form. Vanishing learning rates and
temperature keep the constants in place through one update, and the returned metrics are
compared with the formulas.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import Transition, make_agent

torch.set_num_threads(1)

OBS = gym.spaces.Dict({"x": gym.spaces.Box(-1.0, 1.0, (3,), np.float32)})
ACT = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
GAMMA = 0.9
FROZEN = {"hidden": (8,), "gamma": GAMMA, "obs_norm": False, "actor_lr": 1e-30,
          "critic_lr": 1e-30, "learning_starts": 0, "random_steps": 0}
REWARD = np.array([0.0, 1.0, 0.5, 1.0], np.float32)
TERMINATED = np.array([False, True, False, False])


def _batch() -> dict:
    rng = np.random.default_rng(0)
    obs = {"x": rng.uniform(-1, 1, (4, 3)).astype(np.float32)}
    nxt = {"x": rng.uniform(-1, 1, (4, 3)).astype(np.float32)}
    return {"obs": obs, "next_obs": nxt, "action": rng.uniform(-1, 1, (4, 2)).astype(np.float32),
            "reward": REWARD, "terminated": TERMINATED, "intervened": np.zeros(4, bool)}


def _constant_heads(ensemble, values) -> None:
    """Make head i of a QEnsemble output values[i] for every (s, a)."""
    with torch.no_grad():
        for head, value in zip(ensemble.heads, values, strict=True):
            head[-1].weight.zero_()
            head[-1].bias.fill_(value)


def _critic_loss(q_heads, target) -> float:
    """Sum over heads of the mean squared TD error."""
    return float(sum(np.mean((q - target) ** 2) for q in q_heads))


def test_sac_target_is_the_min_over_target_heads_masked_by_terminated_only():
    agent = make_agent("sac", OBS, ACT, FROZEN | {"init_temperature": 1e-30}, seed=0)
    _constant_heads(agent.critic, [1.0, 3.0])
    _constant_heads(agent.target_critic, [2.0, 5.0])
    metrics = agent.update_from_batch(_batch())
    target = REWARD + GAMMA * (1 - TERMINATED) * 2.0
    assert metrics["loss/critic"] == pytest.approx(_critic_loss([1.0, 3.0], target), rel=1e-5)


def test_sac_actor_maximises_the_min_over_its_critics():
    """Haarnoja et al. use the minimum of the two soft Q-functions in the policy gradient as in
    the TD target, and so does rlkit's SACTrainer, paper 000's implementation: the actor loss is
    alpha log pi - min_i Q_i. It read the mean of the critics, an optimistic objective that lets
    the actor exploit one critic's overestimate (RLPD's ensemble mean is RLPD's own choice)."""
    agent = make_agent("sac", OBS, ACT, FROZEN | {"init_temperature": 1e-30}, seed=0)
    _constant_heads(agent.critic, [1.0, 3.0])
    _constant_heads(agent.target_critic, [1.0, 3.0])
    metrics = agent.update_from_batch(_batch())
    assert metrics["loss/actor"] == pytest.approx(-1.0, abs=1e-6)  # -min(1, 3); the mean: -2


def test_td3_target_and_actor_loss_follow_fujimoto():
    agent = make_agent("td3", OBS, ACT, FROZEN | {"policy_delay": 1}, seed=0)
    _constant_heads(agent.critic, [1.0, 3.0])
    _constant_heads(agent.target_critic, [4.0, 2.5])
    metrics = agent.update_from_batch(_batch())
    target = REWARD + GAMMA * (1 - TERMINATED) * 2.5
    assert metrics["loss/critic"] == pytest.approx(_critic_loss([1.0, 3.0], target), rel=1e-5)
    assert metrics["loss/actor"] == pytest.approx(-1.0, abs=1e-6)  # -Q1 only


def test_td3_updates_actor_and_targets_every_policy_delay_critic_steps():
    agent = make_agent("td3", OBS, ACT, {"hidden": (8,), "policy_delay": 2}, seed=0)
    before = [p.clone() for p in agent.target_actor.parameters()]

    def target_moved() -> bool:
        return any(not torch.equal(a, b)
                   for a, b in zip(before, agent.target_actor.parameters(), strict=True))

    assert "loss/actor" not in agent.update_from_batch(_batch()) and not target_moved()
    assert "loss/actor" in agent.update_from_batch(_batch()) and target_moved()


def test_rlpd_target_is_the_min_over_a_random_subset_of_target_heads():
    config = FROZEN | {"init_temperature": 1e-30, "num_qs": 4, "num_min_qs": 2,
                       "critic_actor_ratio": 1, "batch_size": 4}
    agent = make_agent("rlpd", OBS, ACT, config, seed=3)
    values = [2.0, 5.0, 7.0, 11.0]
    _constant_heads(agent.critic, [1.0, 1.0, 2.0, 4.0])
    _constant_heads(agent.target_critic, values)
    rng = np.random.default_rng()
    rng.bit_generator.state = agent.rng.bit_generator.state
    heads = rng.choice(4, size=2, replace=False)
    metrics = agent.update_from_batch(_batch())
    target = REWARD + GAMMA * (1 - TERMINATED) * min(values[i] for i in heads)
    assert metrics["loss/critic"] == pytest.approx(
        _critic_loss([1.0, 1.0, 2.0, 4.0], target), rel=1e-5)
    assert metrics["loss/actor"] == pytest.approx(-2.0, abs=1e-6)  # RLPD: the ensemble mean


def test_a_truncated_transition_is_stored_as_bootstrapping():
    agent = make_agent("sac", OBS, ACT, {"hidden": (8,)}, seed=0)
    obs = {"x": np.zeros(3, np.float32)}
    agent.observe(Transition(obs, np.zeros(2, np.float32), 0.0, obs, False, True, {}))
    agent.observe(Transition(obs, np.zeros(2, np.float32), 1.0, obs, True, False, {}))
    assert agent.buffer.terminated[:2].tolist() == [False, True]


def test_squashed_gaussian_log_prob_is_the_change_of_variables_density():
    torch.manual_seed(0)  # the actor's initial weights: else whatever earlier tests left
    agent = make_agent("sac", OBS, ACT, {"hidden": (8,)}, seed=0)
    features = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    action, log_prob = agent.actor.from_features(features)
    mean, raw = agent.actor.net(features).chunk(2, dim=-1)
    lo, hi = agent.actor.log_std_min, agent.actor.log_std_max
    std = (lo + 0.5 * (hi - lo) * (torch.tanh(raw) + 1)).exp()
    inside = action.abs() < 0.999  # atanh is ill-conditioned at the bounds
    rows = inside.all(dim=-1)
    assert rows.sum() > 32
    # The reference distribution over the kept rows only: its batch shape must match theirs.
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Independent(torch.distributions.Normal(mean[rows], std[rows]), 1),
        [torch.distributions.TanhTransform()])
    torch.testing.assert_close(log_prob[rows], dist.log_prob(action[rows]), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("name", ["sac", "rlpd"])
def test_temperature_rises_when_entropy_is_below_target(name):
    """J(alpha) = E[-alpha (log pi + H_target)]: a policy less random than the target (here a
    target near the most a tanh-squashed Gaussian reaches, 0.6836 nats a dimension, against the
    untrained policy's std of 0.22) must raise alpha, and vice versa."""
    for target, rises in [(0.6 * ACT.shape[0], True), (-100.0, False)]:
        config = {"hidden": (8,), "learning_starts": 0, "random_steps": 0,
                  "target_entropy": target, "alpha_lr": 1e-2}
        if name == "rlpd":
            config |= {"critic_actor_ratio": 1, "batch_size": 4}
        agent = make_agent(name, OBS, ACT, config, seed=0)
        before = agent.temperature().item()
        agent.update_from_batch(_batch())
        assert (agent.temperature().item() > before) == rises


def _narrow_actor(actor) -> None:
    """Mean 0 and the smallest std (log_std_min) for every state: log pi of a sample is then a
    function of the drawn noise alone."""
    with torch.no_grad():
        actor.net[-1].weight.zero_()
        actor.net[-1].bias.copy_(torch.tensor([0.0, 0.0, -100.0, -100.0]))


def _next_log_prob(seed: int, log_std: float) -> np.ndarray:
    """log pi(a'|s') of the first draw after torch.manual_seed(seed): tanh(N(0, std)) density."""
    torch.manual_seed(seed)
    z = torch.randn(4, 2, dtype=torch.float64)
    u = np.exp(log_std) * z
    gauss = -0.5 * z**2 - log_std - 0.5 * np.log(2 * np.pi)
    return (gauss - torch.log1p(-torch.tanh(u) ** 2)).sum(-1).numpy()


@pytest.mark.parametrize("name,backup", [("sac", True), ("rlpd", True), ("rlpd", False)])
def test_the_soft_target_subtracts_alpha_log_pi_when_the_entropy_is_backed_up(name, backup):
    alpha = 0.5
    config = FROZEN | {"init_temperature": alpha}
    if name == "rlpd":
        config |= {"num_qs": 2, "num_min_qs": 2, "critic_actor_ratio": 1, "batch_size": 4,
                   "backup_entropy": backup}
    agent = make_agent(name, OBS, ACT, config, seed=0)
    _constant_heads(agent.critic, [1.0, 3.0])
    _constant_heads(agent.target_critic, [2.0, 5.0])
    _narrow_actor(agent.actor)
    torch.manual_seed(7)
    metrics = agent.update_from_batch(_batch())
    soft_value = 2.0 - (alpha * _next_log_prob(7, agent.actor.log_std_min) if backup else 0.0)
    target = REWARD + GAMMA * (1 - TERMINATED) * soft_value
    assert metrics["loss/critic"] == pytest.approx(_critic_loss([1.0, 3.0], target), rel=1e-4)
