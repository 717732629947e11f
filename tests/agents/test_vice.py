"""VICE (agents/vice.py) and its env (benchmark.learned_reward): plumbing on the stand-in task."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import tests.standin_env  # noqa: F401  (registers the stand-in)
from agents import Transition, load_agent, make_agent
from benchmark.learned_reward import bind_reward_classifier
from benchmark.train import collect_demos, make_base_policy, make_env, train

torch.set_num_threads(1)

STANDIN = "tests.standin_env:InsertBenchStandIn/PegPoint-v0"
VICE_ENV = {"reward": "vice", "image_size": 16}
TINY = {"hidden": (16, 16), "batch_size": 16, "num_qs": 2, "utd_ratio": 1,
        "learning_starts": 5, "vice_batch_size": 8, "vice_hidden": (16,),
        "vice_image_feature_dim": 8, "vice_pretrain_steps": 2, "vice_update_every": 2}


def _vice(config: dict | None = None, env_kwargs: dict | None = None):
    """A VICE agent pretrained on 3 demonstrations, its classifier bound into its env."""
    torch.manual_seed(0)
    env = make_env(STANDIN, VICE_ENV | (env_kwargs or {}))
    agent = make_agent("vice", env.observation_space, env.action_space, TINY | (config or {}),
                       seed=0)
    agent.pretrain(collect_demos(env, make_base_policy(env), 3))  # the demonstrator's labels
    bind_reward_classifier(env, agent)
    return env, agent


def _say_always(agent, success: bool) -> None:
    """Make the classifier constant: P(success) = sigmoid(+-10)."""
    with torch.no_grad():
        agent.reward_classifier.head[-1].weight.zero_()
        agent.reward_classifier.head[-1].bias.fill_(10.0 if success else -10.0)


def _step_online(env, agent, steps: int) -> list[dict]:
    infos, (obs, _) = [], env.reset(seed=0)
    for _ in range(steps):
        action = agent.act(obs, deterministic=False)
        nxt, reward, term, trunc, info = env.step(action)
        agent.observe(Transition(obs, action, reward, nxt, term, trunc, info))
        infos.append(info)
        obs = nxt if not (term or trunc) else env.reset()[0]
    return infos


def test_goal_frames_are_the_demonstrations_successes_and_the_policy_reads_state_only():
    env, agent = _vice()
    goals = agent.goal_rows()
    assert len(goals) > 0 and len(goals) < len(agent.demo_buffer)
    # The demonstrator's success label: the simulator says the plug is in at those rows only.
    depth = agent.demo_buffer.next_obs["tcp_pose"][:len(agent.demo_buffer), 2]
    assert depth[goals].min() > depth[np.setdiff1d(np.arange(len(depth)), goals)].max() - 0.01
    assert set(agent.config.obs_keys) == {"tcp_pose", "tcp_vel", "wrench"}
    assert set(agent.reward_classifier.meta.keys) == {"wrist", "side"}


def test_learner_rewards_come_from_the_classifier_not_the_simulator():
    env, agent = _vice()
    _say_always(agent, True)  # a classifier fooled everywhere
    infos = _step_online(env, agent, 6)
    n = len(agent.buffer)
    assert not any(i["is_success"] for i in infos)  # the plug never got in ...
    assert np.all(agent.buffer.reward[:n] == 1.0)  # ... yet every stored reward says it did
    assert np.all(agent.buffer.terminated[:n])  # and the classifier ended every episode
    assert all(i["classifier_success"] for i in infos)
    # Sampled batches are relabelled by the current classifier, demo rows included (whose
    # stored rewards are the demonstrator's labels, mostly 0).
    batch = agent.sample()
    assert np.all(batch["reward"] == 1.0) and np.all(batch["terminated"])
    _say_always(agent, False)
    batch = agent.sample()
    assert np.all(batch["reward"] == 0.0) and not np.any(batch["terminated"])


def test_classifier_negatives_are_the_policys_states(monkeypatch):
    env, agent = _vice({"vice_update_every": 1})
    calls = []
    original = agent.update_classifier
    monkeypatch.setattr(agent, "update_classifier",
                        lambda sources, recent_rows=None: calls.append(
                            (sources, recent_rows)) or original(sources, recent_rows))
    _step_online(env, agent, 3)
    metrics = agent.update()
    assert len(calls) == 1
    (online, rows), (failures, failure_rows) = calls[0][0]
    assert online is agent.buffer  # the online buffer, not the demos
    np.testing.assert_array_equal(rows, np.arange(3))  # every online row is a candidate
    assert failures is agent.failure_buffer and len(failure_rows) == 0  # none recorded by default
    assert calls[0][1] is None  # and no recent share by default: drawn uniformly, as in SERL
    assert {"vice/loss", "vice/p_goal", "vice/p_policy"} <= set(metrics)
    assert all(np.isfinite(v) for v in metrics.values())


def test_classifier_update_pushes_goal_frames_up_and_policy_states_down():
    env, agent = _vice({"vice_gp_weight": 0.0, "vice_mixup_alpha": 0.0, "vice_lr": 3e-3,
                        "vice_pretrain_steps": 0})
    _step_online(env, agent, 4)
    goals = agent.goal_rows()
    goal_obs = {k: agent.demo_buffer.next_obs[k][goals] for k in ("wrist", "side", "tcp_pose")}
    policy_obs = {k: agent.buffer.next_obs[k][:4] for k in ("wrist", "side", "tcp_pose")}

    def gap() -> float:
        with torch.no_grad():
            logit = {name: agent.reward_classifier({k: torch.as_tensor(v) for k, v in o.items()})
                     for name, o in (("goal", goal_obs), ("policy", policy_obs))}
        return float(logit["goal"].mean() - logit["policy"].mean())

    before = gap()
    for _ in range(30):
        agent.update_classifier([(agent.buffer, np.arange(4))])
    assert gap() > before + 1.0


def test_lateral_sanity_check_rejects_a_plug_beside_the_goal_at_the_goal_depth(tmp_path):
    """vice_sanity_lateral_mm: the goal frames' x, y range + the margin; a frame at the goal
    depth but 1 mm past the box gets no reward, from the learner's relabelling or from the env."""
    env, agent = _vice({"vice_sanity_margin_mm": 0.0, "vice_sanity_lateral_mm": 1.0})
    _say_always(agent, True)  # only the proprioceptive checks can say no
    goals = agent.goal_rows()
    xy = agent.demo_buffer.next_obs["tcp_pose"][goals, :2]
    x_lo, x_hi, y_lo, y_hi = agent.reward_classifier.meta.goal_xy_box_m
    np.testing.assert_allclose([x_lo, x_hi, y_lo, y_hi],
                               [xy[:, 0].min() - 1e-3, xy[:, 0].max() + 1e-3,
                                xy[:, 1].min() - 1e-3, xy[:, 1].max() + 1e-3], atol=1e-6)
    goal_obs = {k: agent.demo_buffer.next_obs[k][goals].copy() for k in ("wrist", "side",
                                                                           "tcp_pose")}
    beside = {k: v.copy() for k, v in goal_obs.items()}
    beside["tcp_pose"][:, 0] = x_hi + 1e-3  # just outside the box, at each goal depth
    assert np.all(agent.classifier_reward(goal_obs) == 1.0)
    assert np.all(agent.classifier_reward(beside) == 0.0)
    one = {k: v[0] for k, v in beside.items()}
    assert not agent.reward_classifier.is_success(one)[0]
    assert agent.reward_classifier.is_success({k: v[0] for k, v in goal_obs.items()})[0]
    agent.save(tmp_path / "ckpt")
    restored = load_agent(tmp_path / "ckpt")
    assert restored.reward_classifier.meta.goal_xy_box_m == (x_lo, x_hi, y_lo, y_hi)
    with pytest.raises(ValueError, match="vice_sanity_lateral_mm"):
        _vice({"vice_sanity_lateral_mm": -1.0})


def test_checkpoint_round_trip_gives_identical_classifier_outputs_and_updates(tmp_path):
    env, agent = _vice({"vice_sanity_margin_mm": 2.0})
    _step_online(env, agent, 8)
    agent.update()
    agent.save(tmp_path / "ckpt", include_replay=True)
    restored = load_agent(tmp_path / "ckpt")
    assert restored.reward_classifier.meta == agent.reward_classifier.meta
    assert restored.reward_classifier.meta.min_insertion_z_m is not None
    probe = {k: v[:8] for k, v in agent.buffer.next_obs.items()}
    with torch.no_grad():
        np.testing.assert_array_equal(
            agent.reward_classifier({k: torch.as_tensor(v) for k, v in probe.items()}),
            restored.reward_classifier({k: torch.as_tensor(v) for k, v in probe.items()}))
    # Optimiser state, rng and buffers came back too: the next classifier step is the same.
    outputs = []
    for a in (agent, restored):
        torch.manual_seed(5)
        outputs.append(a.update_classifier([(a.buffer, np.arange(len(a.buffer)))]))
    assert outputs[0] == outputs[1]


def test_a_vice_agent_restored_without_its_goal_frames_says_so(tmp_path):
    """Saved without replay, its classifier step failed in numpy ("a cannot be empty unless
    no samples are taken") before RLPD's check named the missing demo rows (agents18)."""
    env, agent = _vice()
    _step_online(env, agent, 6)
    agent.save(tmp_path / "ckpt")
    restored = load_agent(tmp_path / "ckpt")
    with pytest.raises(ValueError, match=r"saved with \d+ rows in its demo buffer but without"):
        restored.update_classifier([(restored.buffer, np.arange(len(restored.buffer)))])


@pytest.mark.parametrize("failures", [0, 2])
def test_vice_run_trains_resumes_and_counts_the_rewards_false_decisions(tmp_path, failures):
    """Resumed = straight, also with recorded failures (their buffer is in the checkpoint: the
    classifier draws its negatives from it)."""
    from tests.benchmark.test_train import _assert_same_final_state

    kwargs = {"env_kwargs": VICE_ENV, "config": TINY | {"vice_failure_episodes": failures},
              "eval_every": 0, "eval_episodes": 1, "demo_episodes": 2, "progress": False}
    straight = train(STANDIN, "vice", seed=1, steps=24, out_dir=tmp_path / "a", **kwargs)
    train(STANDIN, "vice", seed=1, steps=12, out_dir=tmp_path / "b", **kwargs)
    resumed = train(STANDIN, "vice", seed=1, steps=24, out_dir=tmp_path / "b", **kwargs)
    _assert_same_final_state(tmp_path / "a", tmp_path / "b")
    assert resumed.agent.classifier_steps == straight.agent.classifier_steps > 0
    confusion = json.loads((tmp_path / "a" / "evaluations.json").read_text())[-1][
        "reward_confusion"]
    assert sum(confusion.values()) == 24  # every training step was rewarded by the classifier
    saved = np.load(tmp_path / "a" / "demos.npz")
    flags = saved.get("failure_demo", np.zeros(len(saved["reward"]), bool))
    unsuccessful = int(np.sum(flags & (saved["reward"] < 0.5)))  # a near miss may go in
    assert (unsuccessful > 0) == (failures > 0) and straight.demo_episodes == 2  # demos only
    assert len(resumed.agent.failure_rows()) == len(straight.agent.failure_rows()) == unsuccessful


def test_recorded_failures_aim_beside_the_goal_and_are_negatives_never_demonstrations():
    from benchmark.learned_reward import FAILURE_SEED_BASE, add_failure_demos

    env = make_env(STANDIN, VICE_ENV)
    demos = collect_demos(env, make_base_policy(env), 3)
    agent = make_agent("vice", env.observation_space, env.action_space,
                       TINY | {"vice_failure_episodes": 4, "vice_failure_radius_mm": (5.0, 8.0)},
                       seed=0)
    data = add_failure_demos(env, agent, demos)
    flags = data["failure_demo"]
    assert not flags[:len(demos["action"])].any() and flags[len(demos["action"]):].sum() == 200
    # Each episode ends 5-8 mm off the believed goal, so never a success (the stand-in's
    # P-controller converges within its 50 steps; the noise is at most 0.6 of an action).
    ends = np.flatnonzero(flags & (data["terminated"] | data["truncated"]))
    holes = [env.reset(seed=FAILURE_SEED_BASE + i) and env.unwrapped.hole_xy for i in range(4)]
    off = np.linalg.norm(data["next_obs"]["tcp_pose"][ends, :2] - holes, axis=1)
    assert len(ends) == 4 and np.all((off > 0.004) & (off < 0.009)), off
    assert not data["reward"][flags].any()
    assert add_failure_demos(env, agent, data) is data  # a reused demos.npz: not recorded twice
    metrics = agent.pretrain(data)
    assert len(agent.demo_buffer) == len(demos["action"])  # demonstrations only
    assert len(agent.failure_rows()) == 200 and metrics["pretrain/failure_frames"] == 200
    rlpd = make_agent("rlpd", env.observation_space, env.action_space,
                      {k: v for k, v in TINY.items() if not k.startswith("vice_")}, seed=0)
    rlpd.pretrain(data)
    assert len(rlpd.demo_buffer) == len(demos["action"])  # a reused VICE demos.npz
    with pytest.raises(ValueError, match="vice_failure_radius_mm"):
        _vice({"vice_failure_radius_mm": (8.0, 5.0)})
    with pytest.raises(ValueError, match="vice_failure_episodes"):
        _vice({"vice_failure_episodes": -1})


def test_pooled_rows_index_the_sources_laid_end_to_end():
    from agents.vice import pooled_rows

    env, agent = _vice()
    _step_online(env, agent, 5)
    sources = [(agent.buffer, np.array([4, 1])), (agent.demo_buffer, np.array([], int)),
               (agent.demo_buffer, np.array([0, 7, 3]))]
    got = pooled_rows(sources, "tcp_pose", np.array([4, 0, 2, 1, 3]))
    want = [agent.demo_buffer.next_obs["tcp_pose"][3], agent.buffer.next_obs["tcp_pose"][4],
            agent.demo_buffer.next_obs["tcp_pose"][0], agent.buffer.next_obs["tcp_pose"][1],
            agent.demo_buffer.next_obs["tcp_pose"][7]]
    np.testing.assert_array_equal(got, np.stack(want))


@pytest.mark.parametrize("agent,env_kwargs,num_envs,message", [
    ("vice", {"image_size": 16}, 1, "camera images"),
    ("vice", {"obs_mode": "state+pixels", "image_size": 16}, 1, "reward='vice'"),
    ("rlpd", VICE_ENV, 1, "learns its reward classifier"),
    ("vice", VICE_ENV | {"obs_mode": "state"}, 1, "state\\+pixels"),
    ("vice", VICE_ENV, 2, "num_envs=1"),
])
def test_mismatched_reward_and_agent_are_refused(tmp_path, agent, env_kwargs, num_envs, message):
    config = {k: v for k, v in TINY.items() if agent == "vice" or not k.startswith("vice_")}
    with pytest.raises(ValueError, match=message):
        train(STANDIN, agent, steps=6, env_kwargs=env_kwargs, config=config, eval_episodes=0,
              demo_episodes=1, num_envs=num_envs, out_dir=tmp_path / "r", progress=False)


def test_cli_refuses_a_vice_env_for_an_agent_without_a_classifier(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from benchmark.cli import app

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["train", "--task", STANDIN, "--agent", "rlpd", "--steps", "200",
                                   "-e", "reward=vice", "--out", "run", "--no-progress"])
    assert res.exit_code != 0 and "learns its reward classifier" in res.output
    assert "Traceback" not in res.output


def test_eval_scores_a_vice_checkpoint_as_its_run_did(tmp_path, monkeypatch):
    """`insertbench eval` built the VICE env without the run's classifier: its episodes ended
    by the demonstrator's rule (the simulator's success), the run's by the classifier."""
    from typer.testing import CliRunner

    import benchmark.evaluate
    from benchmark.cli import app
    from benchmark.learned_reward import find_vice_wrapper

    monkeypatch.chdir(tmp_path)
    train(STANDIN, "vice", seed=0, steps=12, out_dir=tmp_path / "run", env_kwargs=VICE_ENV,
          config=TINY, eval_every=0, eval_episodes=1, demo_episodes=2, progress=False)
    scored_by = []
    evaluate = benchmark.evaluate.evaluate

    def spy(env, agent, episodes, **kwargs):
        scored_by.append(find_vice_wrapper(env).classifier)
        return evaluate(env, agent, episodes, **kwargs)

    monkeypatch.setattr(benchmark.evaluate, "evaluate", spy)
    res = CliRunner().invoke(app, ["eval", "--task", STANDIN, "--checkpoint", "run",
                                   "--episodes", "1"])
    assert res.exit_code == 0, res.output
    assert len(scored_by) == 1 and scored_by[0] is not None
    # A policy-only export has no trained classifier: it was built untrained, and episodes
    # ended at random lengths from one eval to the next.
    from agents import export_policy

    export_policy(tmp_path / "run" / "checkpoint" / "agent", tmp_path / "exported")
    res = CliRunner().invoke(app, ["eval", "--task", STANDIN, "--checkpoint", "exported",
                                   "--env", "reward=vice", "--env", "image_size=16",
                                   "--episodes", "1"])
    assert res.exit_code == 2 and "no trained reward classifier" in res.output, res.output


@pytest.mark.parametrize("always", [True, False])
def test_heldout_error_rates_judge_the_vice_classifier_by_the_simulator(always):
    """A classifier that always says success errs on exactly the unmated frames of the held-out
    rollouts (false-positive rate 1, false-negative rate 0); one that never does, the reverse."""
    from benchmark.learned_reward import heldout_error_rates

    _, agent = _vice()
    _say_always(agent, always)
    margin_off = agent.reward_classifier.meta.min_insertion_z_m is None
    rates = heldout_error_rates(STANDIN, VICE_ENV | {"goal_hold_steps": 2},
                                agent.reward_classifier, 2)
    assert margin_off and rates["episodes"] == 2
    assert 0 < rates["positives"] < rates["frames"]  # the noisy controller mates sometimes
    assert rates["false_positive_rate"] == (1.0 if always else 0.0)
    assert rates["false_negative_rate"] == (0.0 if always else 1.0)


def test_goal_hold_steps_extend_demonstrations_past_their_first_success():
    """With goal_hold_steps=3 a demonstration ends 3 steps after its first success, every mated
    frame is a goal frame; once the classifier is bound, it alone ends episodes."""
    demos = {}
    for hold in (0, 3):
        env = make_env(STANDIN, VICE_ENV | {"goal_hold_steps": hold})
        demos[hold] = collect_demos(env, make_base_policy(env), 3)
    ends = {h: np.flatnonzero(d["terminated"] | d["truncated"]) for h, d in demos.items()}
    assert np.all(demos[0]["reward"][ends[0]] == 1.0)  # ends at the first success
    first = [int(np.flatnonzero(d)[0]) for d in np.split(demos[3]["reward"] > 0.5, ends[3] + 1)
             if d.any()]
    lengths = np.diff(np.concatenate([[-1], ends[3]]))
    assert len(first) == 3 and all(f + 4 == n for f, n in zip(first, lengths, strict=True))
    assert (demos[3]["reward"] > 0.5).sum() > (demos[0]["reward"] > 0.5).sum()
    with pytest.raises(ValueError, match="goal_hold_steps"):
        make_env(STANDIN, VICE_ENV | {"goal_hold_steps": -1})
    env = make_env(STANDIN, VICE_ENV | {"goal_hold_steps": 3})
    agent = make_agent("vice", env.observation_space, env.action_space, TINY, seed=0)
    agent.pretrain(demos[3])
    bind_reward_classifier(env, agent)
    _say_always(agent, True)
    env.reset(seed=0)
    assert env.step(env.action_space.sample())[2]  # the classifier's success ends it at once


def test_vice_image_size_shows_the_classifier_block_averaged_cameras(tmp_path):
    """vice_image_size=16 on 32x32 cameras: the classifier's CNNs are built for 16x16 images and
    its logits are those of the 2x2 block means, in the learner's relabelling, the env's decision,
    the classifier's updates and after a checkpoint round trip."""
    env, agent = _vice({"vice_image_size": 16}, {"image_size": 32})
    clf = agent.reward_classifier
    assert clf.meta.image_pool == 2
    infos = _step_online(env, agent, 6)  # the env's decision reads one unbatched 32x32 frame
    assert all("classifier_probability" in i for i in infos)
    agent.update_classifier([(agent.buffer, np.arange(6))])
    obs = {k: agent.buffer.next_obs[k][:6] for k in ("wrist", "side")}
    assert obs["side"].shape[1:] == (32, 32, 3)
    means = {k: torch.as_tensor(v, dtype=torch.float32).reshape(6, 16, 2, 16, 2, -1).mean((2, 4))
             for k, v in obs.items()}
    with torch.no_grad():
        logits = clf({k: torch.as_tensor(v) for k, v in obs.items()})
        expected = clf.head(clf.encoder(clf.obs_norm(means))).squeeze(-1)
        with pytest.raises(RuntimeError):  # the CNNs take 16x16 images, not the env's 32x32
            clf.encoder({k: torch.as_tensor(v) for k, v in obs.items()})
    torch.testing.assert_close(logits, expected)
    assert np.all(np.abs(agent.classifier_reward(
        {k: v[:6] for k, v in agent.buffer.next_obs.items()}) - 0.5) == 0.5)
    agent.save(tmp_path / "ckpt")
    restored = load_agent(tmp_path / "ckpt").reward_classifier
    assert restored.meta == clf.meta
    with torch.no_grad():
        torch.testing.assert_close(
            restored({k: torch.as_tensor(v) for k, v in obs.items()}), logits)
    for size in (5, 64):  # 32 pixels are no whole number of 5- or 64-pixel blocks
        with pytest.raises(ValueError, match="vice_image_size"):
            make_agent("vice", env.observation_space, env.action_space,
                       TINY | {"vice_image_size": size}, seed=0)


def test_confusion_rates_give_the_share_of_rewards_that_were_false():
    from benchmark.train import confusion_rates, count_reward_decision

    confusion: dict[str, int] = {}
    for truth, decision in [(False, False)] * 1531 + [(False, True)] * 4 + [(True, True)] * 7 \
            + [(True, False)]:
        count_reward_decision(confusion, {"is_success": truth, "classifier_success": decision})
    rates = confusion_rates(confusion)
    assert rates["false_positive_rate"] == pytest.approx(4 / 1535)
    assert rates["false_negative_rate"] == pytest.approx(1 / 8)
    assert rates["false_discovery_rate"] == pytest.approx(4 / 11)  # of the 11 rewarded steps
    # Nothing rewarded yet: no false-discovery rate (not 0, which would claim a clean reward).
    assert "false_discovery_rate" not in confusion_rates({"true_negatives": 500})


def test_draw_negatives_takes_the_recent_share_from_the_recent_rows_and_is_serl_without_it():
    from agents.vice import draw_negatives

    rows, recent = np.arange(100), np.arange(1000, 1010)  # disjoint, to count where each came from
    for share, expected in ((0.0, 0), (0.25, 16), (0.5, 32), (1.0, 64)):
        drawn = draw_negatives(np.random.default_rng(3), rows, 64, recent, share)
        assert len(drawn) == 64 and np.isin(drawn, recent).sum() == expected
        assert np.all(np.isin(drawn, rows) | np.isin(drawn, recent))
    # No share (the default) is the uniform draw, number for number from the same generator.
    np.testing.assert_array_equal(draw_negatives(np.random.default_rng(3), rows, 64, recent, 0.0),
                                  np.random.default_rng(3).choice(rows, 64))
    np.testing.assert_array_equal(draw_negatives(np.random.default_rng(3), rows, 64),
                                  np.random.default_rng(3).choice(rows, 64))


def test_newest_rows_follow_the_ring_buffer_past_its_end():
    import gymnasium as gym

    from agents.buffer import ReplayBuffer
    from agents.vice import newest_rows

    space = gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (1,), np.float32)})
    buf = ReplayBuffer(space, 1, capacity=4)
    assert len(newest_rows(buf, 3)) == 0
    for i in range(6):  # rows 0-3, then 4 and 5 overwrite storage rows 0 and 1
        obs = {"x": np.array([i], np.float32)}
        buf.add(Transition(obs, np.zeros(1, np.float32), 0.0, obs, False, False, {}))
    rows = newest_rows(buf, 3)
    np.testing.assert_array_equal(rows, [1, 0, 3])
    np.testing.assert_array_equal(buf.next_obs["x"][rows, 0], [5, 4, 3])  # newest first
    assert len(newest_rows(buf, 10)) == 4  # never more than the buffer holds


def test_recent_negative_share_draws_the_classifiers_negatives_from_the_newest_rows(monkeypatch):
    """vice_recent_negative_share=1 with a 2-row window: every negative of an online classifier
    step is one of the 2 newest policy states; with the default, any online row can be."""
    import agents.vice as vice

    drawn = []
    original = vice.draw_negatives
    monkeypatch.setattr(vice, "draw_negatives",
                        lambda *a, **k: drawn.append(original(*a, **k)) or drawn[-1])
    for config, allowed in (({"vice_recent_negative_share": 1.0, "vice_recent_negative_rows": 2},
                             {4, 5}), ({}, set(range(6)))):
        env, agent = _vice({"vice_update_every": 1, "vice_batch_size": 64} | config)
        _step_online(env, agent, 6)
        drawn.clear()
        agent.update()
        assert len(drawn) == 1 and len(drawn[0]) == 32
        assert set(drawn[0].tolist()) <= allowed
        if not config:
            assert not set(drawn[0].tolist()) <= {4, 5}  # 32 uniform draws of 6 rows
    with pytest.raises(ValueError, match="vice_recent_negative_share"):
        _vice({"vice_recent_negative_share": 1.5})
    with pytest.raises(ValueError, match="vice_recent_negative_rows"):
        _vice({"vice_recent_negative_rows": 0})


@pytest.mark.parametrize("field", [{"vice_proprio": True}, {"vice_sanity_margin_mm": 1.0},
                                   {"vice_sanity_lateral_mm": 1.0}])
def test_tcp_pose_checks_without_tcp_pose_are_refused_by_name(field):
    """Without tcp_pose in the observation they failed with a bare KeyError: 'tcp_pose', at
    make_agent (vice_proprio) or at pretrain (the sanity checks; agents20)."""
    import gymnasium as gym

    pixels_only = gym.spaces.Dict({"wrist": gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)})
    action_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    with pytest.raises(ValueError, match=rf"vice's {next(iter(field))} need tcp_pose in the "
                                         r"observation, which has \['wrist'\]"):
        make_agent("vice", pixels_only, action_space, TINY | field, seed=0)
