"""The SERL family (issue 12): RLPD, HIL-SERL, HG-DAgger and the simulated operator.

Plumbing with tiny budgets: each method trains, checkpoints and reloads; RLPD's batches are
half demo, half online; the DrQ encoder is trained by the critic only; intervened transitions
reach both buffers; the operator triggers, delays, hands back and runs out of budget as
configured; the runner stores the executed action.
"""

from __future__ import annotations

import json
import re

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the InsertBench tasks)
import tests.standin_env  # noqa: F401  (registers the stand-in)
from agents import Transition, load_agent, make_agent
from agents.config import build_config
from agents.networks import random_shift
from agents.operator import OperatorConfig, SimulatedOperator
from agents.rlpd import RLPDConfig
from benchmark.train import make_base_policy, train
from envs.intervention import InterventionWrapper, ScriptedTeleop
from tests.agents.helpers import agent_kwargs, demo_dataset
from tests.standin_env import PegPointEnv

torch.set_num_threads(1)

STANDIN = "InsertBenchStandIn/PegPoint-v0"
TINY_RL = {"hidden": (16, 16), "batch_size": 16, "image_feature_dim": 8, "num_qs": 3,
           "utd_ratio": 2, "critic_actor_ratio": 2, "learning_starts": 10}
TINY = {
    "rlpd": TINY_RL,
    "hil_serl": TINY_RL | {"operator_budget_decay_steps": 100},
    "hg_dagger": {"hidden": (32, 32), "batch_size": 16, "image_feature_dim": 8,
                  "pretrain_steps": 20},
}
TASKS = [
    (STANDIN, {"obs_mode": "state", "goal_noise_mm": 1.0}),
    (STANDIN, {"obs_mode": "state+pixels", "action_mode": "pose", "image_size": 16}),
    ("InsertBench/USB-v0", {"obs_mode": "state", "goal_noise_mm": 1.0,
                            "init_offset_mm": [0.0, 10.0]}),
]


@pytest.mark.parametrize(
    "name,task", [("rlpd", 0), ("rlpd", 1), ("rlpd", 2), ("hil_serl", 0), ("hil_serl", 2),
                  ("hg_dagger", 0), ("hg_dagger", 2)],
    ids=["rlpd-standin", "rlpd-standin-pixels", "rlpd-usb", "hil_serl-standin", "hil_serl-usb",
         "hg_dagger-standin", "hg_dagger-usb"])
def test_method_trains_saves_reloads_and_acts_identically(name, task, tmp_path):
    task_id, env_kwargs = TASKS[task]
    torch.manual_seed(0)
    env = gym.make(task_id, **env_kwargs)
    agent = make_agent(name, env.observation_space, env.action_space, TINY[name], seed=0,
                       **agent_kwargs(name, env))
    assert agent.pretrain(demo_dataset(env))["pretrain/transitions"] > 0
    hook = getattr(agent, "operator", None)
    obs, _ = env.reset(seed=0)
    agent.reset(seed=0)
    if hook is not None:
        hook.reset(seed=0, env_step=0)
    learned, intervened = [], 0
    for _ in range(40):
        action = agent.act(obs, deterministic=False)
        override = hook(obs, action) if hook is not None else None
        if override is not None:
            action, intervened = override, intervened + 1
        assert env.action_space.contains(action), action
        nxt, reward, term, trunc, info = env.step(action)
        agent.observe(Transition(obs, action, reward, nxt, term, trunc, info,
                                 intervened=override is not None))
        learned.append(agent.update())
        obs = nxt
        if term or trunc:
            obs, _ = env.reset()
            agent.reset(seed=1)
            if hook is not None:
                hook.reset(seed=1, env_step=agent.env_steps)
    metrics = [m for m in learned if m]
    assert len(metrics) >= 28 and all(np.isfinite(v) for m in metrics for v in m.values())
    if name != "rlpd":
        assert intervened > 0, "the simulated operator never took over"
    agent.save(tmp_path / "ckpt", include_replay=True)
    restored = load_agent(tmp_path / "ckpt", **agent_kwargs(name, env))
    for i in range(3):
        probe, _ = env.reset(seed=900 + i)
        np.testing.assert_array_equal(agent.act(probe, deterministic=True),
                                      restored.act(probe, deterministic=True))


def _rlpd(config: dict | None = None, obs_mode: str = "state", image_size: int = 16):
    env = gym.make(STANDIN, obs_mode=obs_mode, image_size=image_size)
    agent = make_agent("rlpd", env.observation_space, env.action_space,
                       TINY_RL | (config or {}), seed=0)
    demos = demo_dataset(env, 1)
    demos["intervened"][:] = True  # marks demo rows in sampled batches
    agent.pretrain(demos)
    obs, _ = env.reset(seed=0)
    for _ in range(20):
        action = env.action_space.sample()
        nxt, reward, term, trunc, info = env.step(action)
        agent.observe(Transition(obs, action, reward, nxt, term, trunc, info))
        obs = nxt if not (term or trunc) else env.reset()[0]
    return agent


@pytest.mark.parametrize("demo_ratio,expected", [(0.5, 8), (0.25, 4), (0.0, 0)])
def test_rlpd_batches_mix_demo_and_online_rows(demo_ratio, expected):
    agent = _rlpd({"demo_ratio": demo_ratio})
    batch = agent.sample()
    assert len(batch["action"]) == 16 and int(batch["intervened"].sum()) == expected


@pytest.mark.parametrize(("config", "field"), [
    # Accepted, then 0.95 of 8 rows was 8 demo rows and none online (the critic never saw
    # its own experience), 0.5 of 1 row none from the demos.
    ({"demo_ratio": 0.95, "batch_size": 8}, "demo_ratio"),
    ({"demo_ratio": 0.5, "batch_size": 1}, "demo_ratio"),
    # Actions lie in [-1, 1]: at a mean absolute difference of 2 the operator never took over.
    ({"operator_trigger_deviation": 2.0}, "operator_trigger_deviation"),
    # HG-DAgger without online updates never trained on its corrections: BC, accepted silently.
    ({"online_updates_per_step": 0}, "online_updates_per_step"),
])
def test_serl_configs_that_would_switch_their_method_off_are_refused(config, field):
    from agents.config import build_config
    from agents.registry import agent_spec

    agent = "hg_dagger" if field == "online_updates_per_step" else "hil_serl"
    with pytest.raises(ValueError, match=field):
        build_config(agent_spec(agent).config_cls, config)


@pytest.mark.parametrize("online", [False, True])
def test_rlpd_normalises_with_the_demos_statistics_unless_told_otherwise(online):
    """Regression (issue 12): folding online exploration into the normaliser raised USB-v1's
    lateral tcp_pose std 25x over the demos'; RLPD stayed at 0-1/20 over 3,000 steps, and 20/20
    at 2,500 steps with the demos' statistics fixed."""
    env = gym.make(STANDIN, obs_mode="state")
    agent = make_agent("rlpd", env.observation_space, env.action_space,
                       TINY_RL | {"obs_norm_online": online}, seed=0)
    agent.pretrain(demo_dataset(env, 1))
    stats = {k: v.clone() for k, v in agent.obs_norm.state_dict().items()}
    obs, _ = env.reset(seed=0)
    far = {k: v + 100.0 for k, v in obs.items()}  # far from every demo state
    agent.observe(Transition(far, env.action_space.sample(), 0.0, far, False, False, {}))
    unchanged = all(torch.equal(stats[k], v) for k, v in agent.obs_norm.state_dict().items())
    assert unchanged != online and len(agent.buffer) == 1 and agent.env_steps == 1


def test_rlpd_runs_utd_critic_steps_and_actor_steps_per_critic_actor_ratio():
    agent = _rlpd({"utd_ratio": 6, "critic_actor_ratio": 3})
    metrics = agent.update()
    assert agent.gradient_steps == 6 and agent.actor_steps == 2
    assert {"loss/critic", "loss/actor", "alpha"} <= metrics.keys()


@pytest.mark.parametrize("image_encoder", ["drq", "strided"])
def test_rlpd_pixel_encoder_is_shared_and_trained_by_the_critic_only(image_encoder):
    agent = _rlpd({"utd_ratio": 1, "critic_actor_ratio": 1, "image_encoder": image_encoder},
                  obs_mode="state+pixels", image_size=24)
    encoder = agent.encoder
    assert encoder.image_keys  # the stand-in observes cameras in this mode
    assert agent.actor.encoder is agent.critic.encoder is agent.target_critic.encoder is encoder
    assert not any(p is q for p in agent.actor_opt.param_groups[0]["params"]
                   for q in encoder.parameters())
    from agents.buffer import batch_to_torch

    features = encoder(agent.obs_norm(batch_to_torch(agent.sample())["obs"])).detach()
    before = [p.clone() for p in encoder.parameters()]
    actor_before = [p.clone() for p in agent.actor.net.parameters()]
    agent.update_actor(features)  # the actor step moves the actor, never the encoder
    assert all(torch.equal(p, q) for p, q in zip(before, encoder.parameters(), strict=True))
    assert any(not torch.equal(p, q)
               for p, q in zip(actor_before, agent.actor.net.parameters(), strict=True))
    heads = [p.clone() for p in agent.target_critic.heads.parameters()]
    agent.update_from_batch(agent.sample())  # the critic step moves the encoder
    assert any(not torch.equal(p, q) for p, q in zip(before, encoder.parameters(), strict=True))
    assert any(not torch.equal(p, q)  # and the target heads follow the critic's
               for p, q in zip(heads, agent.target_critic.heads.parameters(), strict=True))


def test_pixel_rlpd_checkpoint_round_trip_keeps_one_shared_encoder(tmp_path):
    """Save and load a trained pixel RLPD (strided encoder): every weight, optimiser slot and
    buffer comes back, the encoder is still one module for actor, critics and targets, and
    training continues identically from the two copies."""
    agent = _rlpd({"image_encoder": "strided", "bf16_convs": True}, obs_mode="state+pixels",
                  image_size=24)
    agent.update()
    agent.save(tmp_path / "ckpt", include_replay=True)
    restored = load_agent(tmp_path / "ckpt")
    assert restored.actor.encoder is restored.critic.encoder is restored.target_critic.encoder
    for name, module in agent._checkpoint_modules().items():
        other = restored._checkpoint_modules()[name].state_dict()
        assert all(torch.equal(v, other[k]) for k, v in module.state_dict().items()), name
    assert len(restored.buffer) == len(agent.buffer) > 0
    assert len(restored.demo_buffer) == len(agent.demo_buffer) > 0
    torch.manual_seed(3)
    after = agent.update()
    torch.manual_seed(3)
    assert restored.update() == after
    assert all(torch.equal(p, q) for p, q in zip(agent.encoder.parameters(),
                                                 restored.encoder.parameters(), strict=True))


def test_random_shift_translates_each_image_within_the_padding():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (5, 12, 12, 3), dtype=torch.uint8)
    assert torch.equal(random_shift(images, 0), images)
    shifted = random_shift(images, 2)
    assert shifted.shape == images.shape and shifted.dtype == torch.uint8
    padded = torch.nn.functional.pad(images.permute(0, 3, 1, 2).float(), (2, 2, 2, 2),
                                     mode="replicate").permute(0, 2, 3, 1).to(torch.uint8)
    for i in range(5):  # every output is one of the 25 crops of its own padded image
        crops = [padded[i, r:r + 12, c:c + 12] for r in range(5) for c in range(5)]
        assert any(torch.equal(shifted[i], crop) for crop in crops)


def test_hil_serl_puts_interventions_in_both_buffers_and_policy_steps_online_only():
    env = gym.make(STANDIN)
    agent = make_agent("hil_serl", env.observation_space, env.action_space, TINY["hil_serl"],
                       base_policy=make_base_policy(env))
    obs, _ = env.reset(seed=0)
    for i in range(10):
        action = env.action_space.sample()
        nxt, reward, term, trunc, info = env.step(action)
        agent.observe(Transition(obs, action, reward, nxt, term, trunc, info,
                                 intervened=i % 3 == 0))
        obs = nxt
    assert len(agent.buffer) == 10 and len(agent.demo_buffer) == 4
    assert agent.demo_buffer.intervened[:4].all() and agent.interventions == 4


class _Expert:
    """Always pushes +x at full scale."""

    def __call__(self, obs):
        return np.array([1.0, 0.0, 0.0], np.float32)


def _operator(**overrides) -> SimulatedOperator:
    config = OperatorConfig(**({"operator_action_noise": 0.0} | overrides))
    return SimulatedOperator(_Expert(), gym.spaces.Box(-1, 1, (3,), np.float32), config)


def test_operator_takes_over_after_its_reaction_delay_then_hands_back():
    op = _operator(operator_reaction_steps=2, operator_takeover_steps=3,
                   operator_budget_start=100)
    op.reset(seed=0, env_step=0)
    stray = np.array([-1.0, 0.0, 0.0], np.float32)
    actions = [op({}, stray) for _ in range(8)]
    taken = [a is not None for a in actions]
    # 2 straying steps are tolerated, the 3rd triggers a 3-step takeover, then the count restarts
    assert taken == [False, False, True, True, True, False, False, True]
    np.testing.assert_allclose(actions[2], [1.0, 0.0, 0.0])
    op.reset(seed=0, env_step=0)
    assert all(op({}, np.array([0.9, 0.0, 0.0], np.float32)) is None for _ in range(10))


def test_operator_budget_shrinks_over_training_and_caps_each_episode():
    op = _operator(operator_reaction_steps=0, operator_takeover_steps=50,
                   operator_budget_start=20, operator_budget_end=0,
                   operator_budget_decay_steps=1000)
    assert [op.budget(s) for s in (0, 500, 1000, 5000)] == [20, 10, 0, 0]
    stray = np.array([-1.0, 0.0, 0.0], np.float32)
    for step, allowed in ((0, 20), (500, 10), (1000, 0)):
        op.reset(seed=1, env_step=step)
        assert sum(op({}, stray) is not None for _ in range(40)) == allowed


def test_operator_noise_is_seeded_per_episode():
    op = _operator(operator_action_noise=0.3, operator_reaction_steps=0)
    stray = np.array([-1.0, 0.0, 0.0], np.float32)
    op.reset(seed=7)
    first = [op({}, stray) for _ in range(5)]
    op.reset(seed=7)
    np.testing.assert_array_equal(first, [op({}, stray) for _ in range(5)])
    assert not np.allclose(first[0], [1.0, 0.0, 0.0])


INTERVENED_ID = "InsertBenchTest/TeleopPegPoint-v0"


def _teleop_env(**kwargs):
    """The stand-in behind an intervention wrapper: the 'human' acts on every third step."""
    inputs = [np.full(6, 0.25, np.float32) if i % 3 == 0 else None for i in range(10_000)]
    return InterventionWrapper(PegPointEnv(**kwargs), ScriptedTeleop(inputs))


if INTERVENED_ID not in gym.registry:
    gym.register(INTERVENED_ID, entry_point=_teleop_env, max_episode_steps=50)


@pytest.mark.parametrize(("agent", "override", "message"), [
    ("hil_serl", {"operator_budget_start": 0, "operator_budget_end": 0},
     "has no budget (operator_budget_start=0)"),
    ("hg_dagger", {"operator_reaction_steps": 100_000}, "reacts after operator_reaction_steps="
                                                        "100000 straying steps, and this task's "
                                                        "episodes end after"),
])
def test_a_simulated_operator_that_could_never_act_is_said_to(tmp_path, agent, override,
                                                             message):
    """Without a word: 0 intervened transitions, HIL-SERL trained as RLPD and HG-DAgger as BC
    under their names (serl17). Said, not refused: a budget of 0 is docs/results/serl.md's
    control (HIL-SERL bitwise RLPD)."""
    with pytest.warns(UserWarning, match=re.escape(message)):
        result = train(STANDIN, agent, seed=0, steps=30, config=TINY[agent] | override,
                       out_dir=tmp_path / "r", demo_episodes=1, eval_episodes=0,
                       progress=False)
    assert result.intervention_steps == 0


def test_runner_stores_the_action_an_intervention_wrapper_executed(tmp_path):
    config = TINY["hil_serl"] | {"operator": "none"}
    # Without the wrapper (or a device) nothing intervenes: it trained as RLPD, without a word.
    with pytest.raises(ValueError, match="operator='none' learns from a device's"):
        train(STANDIN, "hil_serl", seed=0, steps=30, config=config, out_dir=tmp_path / "none",
              demo_episodes=1, eval_episodes=0, progress=False)
    assert not (tmp_path / "none").exists()
    result = train("tests.agents.test_serl:" + INTERVENED_ID, "hil_serl", seed=0, steps=30,
                   config=config, out_dir=tmp_path, demo_episodes=1, eval_episodes=0,
                   progress=False)
    agent = result.agent
    online = agent.buffer
    flagged = online.intervened[:30]
    assert flagged.sum() == 10
    assert result.intervention_steps == 10 and result.demo_episodes == 1  # the training cost
    np.testing.assert_allclose(online.action[:30][flagged], 0.25)  # the human's, not the policy's
    assert not np.allclose(online.action[:30][~flagged], 0.25)
    n_demo = len(agent.demo_buffer) - 10
    np.testing.assert_allclose(agent.demo_buffer.action[n_demo:n_demo + 10], 0.25)


def test_hil_serl_run_with_the_simulated_operator_resumes_exactly(tmp_path):
    """A checkpoint mid-episode (and mid-takeover) resumes to the same final state."""
    from tests.benchmark.test_train import _assert_same_final_state

    config = TINY["hil_serl"] | {"operator_reaction_steps": 1}
    kwargs = {"env_kwargs": {"goal_noise_mm": 1.0}, "eval_every": 0, "eval_episodes": 1,
              "demo_episodes": 1, "progress": False}
    task = "tests.standin_env:" + STANDIN
    straight = train(task, "hil_serl", seed=3, steps=70, config=config, out_dir=tmp_path / "a",
                     **kwargs)
    assert straight.agent.interventions > 0
    train(task, "hil_serl", seed=3, steps=35, config=config, out_dir=tmp_path / "b", **kwargs)
    resumed = train(task, "hil_serl", seed=3, steps=70, config=config, out_dir=tmp_path / "b",
                    **kwargs)
    assert resumed.agent.interventions == straight.agent.interventions
    assert resumed.intervention_steps == straight.intervention_steps == straight.agent.interventions
    assert resumed.demo_episodes == straight.demo_episodes == 1
    _assert_same_final_state(tmp_path / "a", tmp_path / "b")


@pytest.mark.parametrize("env_kwargs", [{"goal_noise_mm": 1.0},
                                        {"obs_mode": "state+pixels", "image_size": 16}],
                         ids=["state", "pixels"])
def test_hil_serl_without_operator_budget_is_rlpd_bitwise(env_kwargs, tmp_path):
    """With ``operator_budget_start=0`` the operator never acts and HIL-SERL is RLPD: same
    weights, buffers and evaluations after training (the control of the pixel trace,
    docs/results/serl.md)."""
    from tests.benchmark.test_train import _assert_same_final_state

    kwargs = {"env_kwargs": env_kwargs, "eval_every": 30, "eval_episodes": 2,
              "demo_episodes": 1, "progress": False}
    task = "tests.standin_env:" + STANDIN
    rlpd = train(task, "rlpd", seed=2, steps=60, config=TINY_RL, out_dir=tmp_path / "a",
                 **kwargs)
    hil = train(task, "hil_serl", seed=2, steps=60, config=TINY_RL | {"operator_budget_start": 0},
                out_dir=tmp_path / "b", **kwargs)
    assert hil.intervention_steps == hil.agent.interventions == 0
    assert len(hil.agent.demo_buffer) == len(rlpd.agent.demo_buffer)
    _assert_same_final_state(tmp_path / "a", tmp_path / "b")
    assert hil.summaries == rlpd.summaries


def test_serl_presets_expand_with_valid_configs():
    from agents.config import build_config
    from agents.registry import agent_spec
    from benchmark.preset import load_preset

    cells = load_preset("serl").cells
    assert len(cells) == 3 * 2 * 5 * 3
    for cell in cells + load_preset("serl-quick").cells:
        build_config(agent_spec(cell.agent).config_cls, dict(cell.agent_config))
        # VICE is rewarded by its own classifier only, the rest by the simulator's success
        assert cell.env_kwargs["reward"] == ("vice" if cell.agent == "vice" else "sparse")
    assert [c.agent for c in load_preset("serl-quick").cells if c.agent == "vice"] == ["vice"]
    # the pixel cells learn as `benchmark.check_serl --pixels` does
    from benchmark.check_serl import PIXEL_CONFIG

    pixel_cells = [c for c in cells if c.env_kwargs.get("obs_mode") == "state+pixels"]
    assert len(pixel_cells) == 3 * 5 * 3
    assert all(PIXEL_CONFIG.items() <= dict(c.agent_config).items() for c in pixel_cells)
    # Regression: in the default start frame every episode starts at tcp_pose 0 and a state
    # policy cannot see the start offset; the presets' observation must show it.
    kwargs = load_preset("serl-quick").cells[0].env_kwargs
    env = gym.make(cells[0].task_id, **kwargs)
    starts = [env.reset(seed=seed)[0]["tcp_pose"][:2] for seed in range(2)]
    assert np.linalg.norm(starts[0] - starts[1]) > 1e-3  # [m]


def test_steps_to_target_is_the_first_evaluation_that_held_to_the_end():
    from benchmark.check_serl import held_target, steps_to_target

    steps = [250, 500, 750, 1000, 1250]
    assert steps_to_target(steps, [18, 12, 19, 20, 18], 18) == 750  # the early 18 fell back
    assert steps_to_target(steps, [18, 19, 20, 20, 17], 18) is None  # fell at the end
    assert steps_to_target(steps, [20] * 5, 18) == 250
    stop = held_target(18, 3)
    assert not stop([{"successes": 20}, {"successes": 20}])  # too few evaluations yet
    assert not stop([{"successes": n} for n in (20, 20, 17, 18, 19)])  # 17 is in the last 3
    assert stop([{"successes": n} for n in (5, 18, 19, 20)])


def test_serl_interventions_counts_what_the_runner_logged(tmp_path):
    """benchmark.serl_interventions: per-window counts add up to the run's own totals."""
    from benchmark.serl_interventions import summary

    config = TINY["hil_serl"] | {"operator_reaction_steps": 0, "operator_budget_start": 20}
    result = train("tests.standin_env:" + STANDIN, "hil_serl", seed=1, steps=120,
                   config=config, env_kwargs={"goal_noise_mm": 1.0}, out_dir=tmp_path,
                   eval_every=60, eval_episodes=2, demo_episodes=1, progress=False)
    rows = summary(tmp_path, 60)
    online = result.agent.buffer
    ended = sum(r["env_steps"] for r in rows)  # steps of the episodes that ended
    assert 0 < ended <= result.steps
    assert sum(r["intervened_steps"] for r in rows) == int(online.intervened[:ended].sum()) > 0
    assert sum(r["episodes"] for r in rows) == result.episodes - (ended < result.steps)
    assert all(r["finished_by_operator"] <= r["successes"] <= r["episodes"] for r in rows)
    assert [r["budget"] for r in rows] == [20, 8][:len(rows)]
    assert rows[0]["eval_after"] == result.summaries[0]["successes"]
    # A step left out of the buffer (one that blew up) shifts every later row: an episode's last
    # step was read off the next one's first row (serl24). Said "-" instead.
    runner = tmp_path / "checkpoint/runner.json"
    runner.write_text(json.dumps(json.loads(runner.read_text()) | {"step": result.steps + 1}))
    assert {r["finished_by_operator"] for r in summary(tmp_path, 60)} == {"-"}


def test_serl_interventions_reads_an_hg_dagger_run_without_evaluations(tmp_path):
    """It opened the online replay buffer, which HG-DAgger does not keep, and evaluations.json,
    which --eval-episodes 0 does not write: both runs failed in one line (serl17)."""
    from benchmark.serl_interventions import summary

    config = TINY["hg_dagger"] | {"operator_reaction_steps": 0, "operator_budget_start": 20}
    result = train("tests.standin_env:" + STANDIN, "hg_dagger", seed=1, steps=60,
                   config=config, env_kwargs={"goal_noise_mm": 1.0}, out_dir=tmp_path,
                   eval_episodes=0, demo_episodes=1, progress=False)
    rows = summary(tmp_path, 30)
    assert rows and all(r["finished_by_operator"] == "-" and r["eval_after"] is None
                        for r in rows)
    assert sum(r["intervened_steps"] for r in rows) <= result.intervention_steps


def test_rlpd_steps_its_actor_once_per_env_step_by_default():
    """RLPD updates the actor once per env step whatever the UTD; SERL's cta_ratio of 2 as the
    default made 10 actor steps per env step at RLPD's UTD of 20."""
    agent = _rlpd({"utd_ratio": 4, "critic_actor_ratio": None})
    for _ in range(3):
        agent.update()
    assert agent.gradient_steps == 12 and agent.actor_steps == 3
    assert RLPDConfig().critic_actor_ratio is None
    with pytest.raises(ValueError, match="critic_actor_ratio"):
        build_config(RLPDConfig, {"critic_actor_ratio": 0})
