"""Checkpoint format details: compact Box bounds (and the old element-by-element form), and
policy-only checkpoints (`agents.export_policy`) that act like the full one but cannot be trained.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import tests.standin_env  # noqa: F401  (registers the stand-in)
from agents import Transition, export_policy, load_agent, make_agent
from agents.checkpoint import space_from_json, space_to_json
from tests.agents.helpers import agent_kwargs

torch.set_num_threads(1)

STANDIN = "InsertBenchStandIn/PegPoint-v0"
LEDGER = Path(__file__).resolve().parents[2] / "leaderboards" / "ledger"


def _image_and_state_space() -> gym.spaces.Dict:
    return gym.spaces.Dict({
        "wrist": gym.spaces.Box(0, 255, (64, 64, 3), np.uint8),
        "tcp_pose": gym.spaces.Box(np.array([-1.0, -2.0, 0.0], np.float32),
                                   np.array([1.0, 2.0, 0.5], np.float32), dtype=np.float32),
        "force": gym.spaces.Box(-np.inf, np.inf, (6,), np.float32),
    })


def test_uniform_box_bounds_are_stored_once_and_round_trip():
    space = _image_and_state_space()
    data = space_to_json(space)
    assert data["spaces"]["wrist"] == {"type": "Box", "shape": [64, 64, 3], "dtype": "uint8",
                                             "low": 0, "high": 255}
    assert data["spaces"]["force"]["low"] == -np.inf
    assert data["spaces"]["tcp_pose"]["low"] == pytest.approx([-1.0, -2.0, 0.0])
    text = json.dumps(data)
    assert len(text) < 600
    back = space_from_json(json.loads(text))
    assert back == space
    assert back["wrist"].dtype == np.uint8 and back["wrist"].low.shape == (64, 64, 3)


def test_element_by_element_bounds_of_older_checkpoints_still_read():
    space = _image_and_state_space()
    old = {"type": "Dict", "spaces": {
        k: {"type": "Box", "shape": list(s.shape), "dtype": s.dtype.name,
            "low": s.low.tolist(), "high": s.high.tolist()} for k, s in space.spaces.items()}}
    assert space_from_json(json.loads(json.dumps(old))) == space
    with pytest.raises(ValueError, match="Box bound must be a number"):
        space_from_json({"type": "Box", "shape": [2], "dtype": "float32", "low": "0",
                         "high": 1})


def _spelled_out(space: dict) -> bool:
    if space["type"] == "Dict":
        return any(_spelled_out(s) for s in space["spaces"].values())
    return isinstance(space["low"], list)


def test_ledger_checkpoints_in_the_old_form_read_as_the_compact_form():
    """Entries already in the ledger keep their bytes (and policy SHA-256): their spelled-out
    spaces must read as the same spaces the compact form describes."""
    metas = [json.loads(p.read_text()) for p in sorted(LEDGER.glob("**/agent.json"))]
    old = [m for m in metas if _spelled_out(m["observation_space"])]
    assert old, "the ledger has no checkpoint with spelled-out bounds left to read"
    for meta in old:
        for key in ("observation_space", "action_space"):
            space = space_from_json(meta[key])
            assert space_from_json(json.loads(json.dumps(space_to_json(space)))) == space


@pytest.mark.parametrize("name", ["sac", "td3", "rlpd", "residual_td3"])
def test_policy_only_checkpoint_acts_like_the_full_one(tmp_path, name):
    env = gym.make(STANDIN)
    kwargs = agent_kwargs(name, env)
    config = {"hidden": (32, 32), "batch_size": 16}
    agent = make_agent(name, env.observation_space, env.action_space, config, seed=3, **kwargs)
    for module in agent._checkpoint_modules().values():  # weights unlike a fresh agent's
        for param in module.parameters():
            param.data.add_(0.01 * torch.randn_like(param))
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        agent.observe(Transition(obs, env.action_space.sample(), 0.0, obs, False, False))
    agent.save(tmp_path / "full", include_replay=True)
    export_policy(tmp_path / "full", tmp_path / "policy")

    assert sorted(p.name for p in (tmp_path / "policy").iterdir()) == [
        "agent.json", "weights.safetensors"]
    prefixes = {k.split(".", 1)[0] for k in load_file(tmp_path / "policy" / "weights.safetensors")}
    assert prefixes == {"actor", "obs_norm"}
    full_bytes = (tmp_path / "full" / "weights.safetensors").stat().st_size
    assert (tmp_path / "policy" / "weights.safetensors").stat().st_size < full_bytes / 2

    with pytest.raises(ValueError, match="holds only the policy"):
        load_agent(tmp_path / "policy", **kwargs)
    exported = load_agent(tmp_path / "policy", allow_policy_only=True, **kwargs)
    full = load_agent(tmp_path / "full", **kwargs)
    # Acting alone reads no replay (eval loaded a pixel run's buffers: GBs; agents23)
    acting = load_agent(tmp_path / "full", acting_only=True, **kwargs)
    assert len(full.buffer) == 5 and len(acting.buffer) == 0
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(exported.act(obs, deterministic=True),
                                      full.act(obs, deterministic=True))
        np.testing.assert_array_equal(acting.act(obs, deterministic=True),
                                      full.act(obs, deterministic=True))


def test_a_policy_only_checkpoint_keeps_no_trainers_bookkeeping(tmp_path):
    """An exported IQL policy listing a million offline task ids made a million empty replay
    buffers while it loaded (8 MB of agent.json, 3 GB): one leaderboard submission could use up
    the evaluator's memory. A full checkpoint still restores its task buffers."""
    env = gym.make(STANDIN)
    agent = make_agent("iql", env.observation_space, env.action_space,
                       {"hidden": (16, 16), "batch_size": 8}, seed=0,
                       **agent_kwargs("iql", env))
    agent.save(tmp_path / "full")
    export_policy(tmp_path / "full", tmp_path / "policy")
    for folder, tasks in (("policy", list(range(1_000))), ("full", [0, 3])):
        meta = json.loads((tmp_path / folder / "agent.json").read_text())
        meta["extra"]["offline_tasks"] = tasks
        (tmp_path / folder / "agent.json").write_text(json.dumps(meta))
    assert load_agent(tmp_path / "policy", allow_policy_only=True).offline.task_ids == []
    assert load_agent(tmp_path / "full").offline.task_ids == [0, 3]



def test_a_policy_only_state_iql_keeps_no_trainers_bookkeeping_either(tmp_path):
    """State IQL keeps IQL's extra state under "iql": its offline_tasks still made a replay
    buffer each (500 ids: 271 MB; 200,000: the evaluator killed for memory)."""
    env = gym.make("InsertBench/USB-v1", obs_mode="state+pixels", image_size=16)
    agent = make_agent("state_iql", env.observation_space, env.action_space,
                       {"hidden": (16, 16), "batch_size": 8}, seed=0,
                       **agent_kwargs("state_iql", env))
    agent.save(tmp_path / "full")
    export_policy(tmp_path / "full", tmp_path / "policy")
    meta = json.loads((tmp_path / "policy" / "agent.json").read_text())
    meta["extra"]["iql"]["offline_tasks"] = list(range(50))
    (tmp_path / "policy" / "agent.json").write_text(json.dumps(meta))
    loaded = load_agent(tmp_path / "policy", allow_policy_only=True)
    assert loaded.iql.offline.task_ids == []


def _small_sac(seed=0):
    env = gym.make(STANDIN)
    agent = make_agent("sac", env.observation_space, env.action_space,
                       {"hidden": (16, 16), "batch_size": 8, "learning_starts": 10,
                        "random_steps": 10}, seed=seed)
    return env, agent


def test_a_numpy_seed_saves_and_a_save_replaces_an_earlier_one_whole(tmp_path):
    """seed=np.int64(3) was accepted and then ended save() in "int64 is not JSON serializable"
    with only the weights written; a save into a folder with an earlier save's replay buffer
    loaded that buffer beside the new weights."""
    from tests.agents.helpers import online_steps

    env, agent = _small_sac(np.int64(3))
    online_steps(env, agent, 20)
    agent.save(tmp_path / "a", include_replay=True)
    assert json.loads((tmp_path / "a" / "agent.json").read_text())["seed"] == 3
    assert (tmp_path / "a" / "replay_online.npz").is_file()
    _, fresh = _small_sac()
    fresh.save(tmp_path / "a")  # no replay: the earlier buffer must not outlive its agent
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["agent.json",
                                                                  "weights.safetensors"]
    assert load_agent(tmp_path / "a").buffer.size == 0


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m.pop("rng_state"), "lacks rng_state"),
    (lambda m: m.__setitem__("rng_state", 5), "rng_state is not a numpy generator state"),
    (lambda m: m.pop("extra"), "lacks extra"),  # counters read as 0: resumed inexactly
    (lambda m: m.__setitem__("optimizer_param_groups", {}),  # fresh Adam moments
     "lacks optimizer_param_groups['actor'], optimizer_param_groups['critic']"),
    # A bare KeyError or TypeError, naming no file; a shape of 10^12 elements was allocated.
    (lambda m: m.pop("config"), "config must be a JSON object, got None"),
    (lambda m: m.pop("agent"), "agent must be a JSON string, got None"),
    (lambda m: m.__setitem__("observation_space", "x"), "observation_space must be a JSON object"),
    (lambda m: m["observation_space"].__setitem__("type", "Tuple"),
     "does not describe an agent (a damaged or edited checkpoint?)"),
    (lambda m: m.__setitem__("seed", -1), "seed must be an integer in [0, 2**63), got -1"),
    (lambda m: next(iter(m["observation_space"]["spaces"].values())).__setitem__(
        "shape", [100_000, 100_000, 100]), "must have at most 100,000,000 elements"),
    # These loaded: an lr of 1e6 sent the actions to +-1, maximize made the critic ascend, an
    # edited config.actor_lr was ignored for the stored one, a string lr failed in fused Adam.
    (lambda m: m["optimizer_param_groups"]["critic"][0].__setitem__("lr", 1e6),
     "its optimizer settings differ from the config's: lr 1000000.0 (config: 0.0003)"),
    (lambda m: m["optimizer_param_groups"]["actor"][0].__setitem__("maximize", True),
     "maximize True (config: False)"),
    (lambda m: m["config"].__setitem__("actor_lr", 1e-5), "lr 0.0003 (config: 1e-05)"),
    (lambda m: m["optimizer_param_groups"].__setitem__("actor", "x"),
     "its optimizer settings do not fit this agent's optimizer"),
    (lambda m: m.__setitem__("rng_state", {**m["rng_state"], "state": {"state": -1, "inc": 1}}),
     "rng_state is not a numpy generator state"),  # an OverflowError, no file named
    (lambda m: m["extra"].__setitem__("env_steps", "abc"), "its extra state does not load"),
    (lambda m: m["extra"].__setitem__("env_steps", -10**12), "negative counters ['env_steps']"),
])
def test_a_damaged_agent_json_is_named_not_resumed_inexactly(tmp_path, edit, message):
    from tests.agents.helpers import online_steps

    env, agent = _small_sac()
    online_steps(env, agent, 20)
    agent.save(tmp_path / "a", include_replay=True)
    meta = json.loads((tmp_path / "a" / "agent.json").read_text())
    edit(meta)
    (tmp_path / "a" / "agent.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=re.escape(message)):
        load_agent(tmp_path / "a")


def test_an_optimizer_tensor_lost_from_the_weights_is_named(tmp_path):
    """Resuming ended in `KeyError: 'exp_avg'` at the first update."""
    from safetensors.torch import save_file

    from tests.agents.helpers import online_steps

    env, agent = _small_sac()
    online_steps(env, agent, 20)
    agent.save(tmp_path / "a")
    tensors = load_file(tmp_path / "a" / "weights.safetensors")
    del tensors[next(k for k in tensors if k.startswith("optim.critic.") and "exp_avg" in k)]
    save_file(tensors, str(tmp_path / "a" / "weights.safetensors"))
    with pytest.raises(ValueError, match="holds the critic optimizer's state for some "
                                         "parameters only partly"):
        load_agent(tmp_path / "a")


def _optimizer_slot(tensors: dict, slot: str) -> str:
    return next(k for k in sorted(tensors) if k.startswith("optim.critic.0.")
                and k.endswith(f".{slot}"))


def _actor_weight(tensors: dict) -> str:
    return next(k for k in sorted(tensors) if k.startswith("actor.") and k.endswith("weight"))


@pytest.mark.parametrize(("edit", "message"), [
    # torch's load_state_dict converted these without a word: a truncated policy, exit 0.
    (lambda t: t.update({_actor_weight(t): t[_actor_weight(t)].to(torch.int64)}),
     "is torch.int64"),
    (lambda t: t.update({_actor_weight(t): torch.full_like(t[_actor_weight(t)], float("nan"))}),
     "holds NaN or inf"),
    (lambda t: t.update({_actor_weight(t): t[_actor_weight(t)][:1]}), "this network's is"),
    (lambda t: t.update({"critic.stray": torch.zeros(2)}), "unknown tensors ['stray']"),
    (lambda t: t.update({"nosuchnet.weight": torch.zeros(2)}),  # was ignored
     "holds tensors of no network of this agent: ['nosuchnet.weight']"),
    (lambda t: t.update({"optim.bogus.0.exp_avg": torch.zeros(2)}),  # was ignored
     "holds tensors of no network of this agent: ['optim.bogus.0.exp_avg']"),
    # These loaded, and the first update turned every weight NaN ("a NaN observation?").
    (lambda t: t.update({_optimizer_slot(t, "exp_avg"): torch.full_like(
        t[_optimizer_slot(t, "exp_avg")], float("nan"))}), "holds NaN or inf"),
    (lambda t: t.update({_optimizer_slot(t, "exp_avg_sq"): -torch.ones_like(
        t[_optimizer_slot(t, "exp_avg_sq")])}), "exp_avg_sq is negative"),
    (lambda t: t.update({_optimizer_slot(t, "exp_avg"): t[_optimizer_slot(t, "exp_avg")][:1]}),
     "its parameter's is"),
    # agents23: a negative count acted on raw observations, a negative sum of squares in NaN
    (lambda t: t.update({"obs_norm.count": -t["obs_norm.count"]}),
     "running statistics ['obs_norm.count'] are negative"),
    (lambda t: t.update({k: -torch.ones_like(v) for k, v in t.items()
                         if k.startswith("obs_norm.") and k.endswith("_m2")}),
     "running statistics ['obs_norm.tcp_pose_m2', 'obs_norm.tcp_vel_m2', "),
])
def test_weights_of_another_shape_dtype_or_not_finite_are_refused_by_name(tmp_path, edit, message):
    from safetensors.torch import save_file

    from tests.agents.helpers import online_steps

    env, agent = _small_sac()
    online_steps(env, agent, 20)  # past learning_starts: the optimizers hold moments
    agent.save(tmp_path / "a")
    tensors = load_file(tmp_path / "a" / "weights.safetensors")
    edit(tensors)
    save_file(tensors, str(tmp_path / "a" / "weights.safetensors"))
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        load_agent(tmp_path / "a")
    assert str(tmp_path / "a" / "weights.safetensors") in str(caught.value)


_SMALL = {"hidden": (16, 16), "batch_size": 8, "learning_starts": 10, "random_steps": 10}


def test_sac_restored_without_its_offline_rows_trains_on_once_given_them_again(tmp_path):
    """The refusal counted every row of the saved buffer, online ones too: given its offline
    rows again, as it advises, a SAC saved after online steps was still refused (diff20)."""
    from benchmark.train import collect_demos, make_base_policy
    from tests.agents.helpers import online_steps

    env = gym.make(STANDIN)
    agent = make_agent("sac", env.observation_space, env.action_space, _SMALL, seed=0)
    demos = collect_demos(env, make_base_policy(env), 1)
    agent.pretrain(demos)
    online_steps(env, agent, 30)
    # Twice: saved again without replay, it holds those rows once, not twice, and given them
    # once more it trains on (a save of 2N refused the same N, cycle after cycle: diff21).
    for save in ("a", "b"):
        agent.save(tmp_path / save)
        agent = load_agent(tmp_path / save)
        with pytest.raises(ValueError, match=rf"pretrained on {len(demos['reward'])} offline"):
            online_steps(env, agent, 30)
        agent.pretrain(demos)
        online_steps(env, agent, 30)


@pytest.mark.parametrize(("name", "config"), [
    ("rlpd", _SMALL | {"num_qs": 2, "utd_ratio": 1}),
    ("td3_lfd", _SMALL | {"demo_batch_size": 4, "pretrain_steps": 2}),
    ("bc", {"hidden": (16,), "batch_size": 8, "pretrain_steps": 2, "online_updates_per_step": 1}),
    # Their offline rows share the online buffer (paper 001's offline-then-online baseline):
    ("sac", _SMALL | {"pretrain_steps": 2}),
    ("td3", _SMALL),
])
def test_an_agent_restored_without_its_demos_refuses_to_train_on(tmp_path, name, config):
    """Saved without replay and loaded, RLPD sampled its batches all online (SAC), TD3+LfD and
    BC trained without their demonstrations, SAC and TD3 without their offline data (agents18),
    without a word (IQL and AWAC refused)."""
    from benchmark.train import collect_demos, make_base_policy
    from tests.agents.helpers import online_steps

    env = gym.make(STANDIN)
    agent = make_agent(name, env.observation_space, env.action_space, config, seed=0)
    agent.pretrain(collect_demos(env, make_base_policy(env), 1))
    agent.save(tmp_path / "a")
    restored = load_agent(tmp_path / "a")
    with pytest.raises(ValueError, match=r"saved with \d+ rows in its demo buffer but without|"
                                         r"pretrained on \d+ offline transitions, kept in its "
                                         r"replay buffer, but was restored without them"):
        if name == "bc":  # it clones demonstrations only: an intervention adds one
            obs, _ = env.reset(seed=0)
            action = env.action_space.sample()
            restored.observe(Transition(obs, action, 0.0, env.step(action)[0], False, False, {},
                                        intervened=True))
            restored.update()
        else:
            online_steps(env, restored, 40)
    agent.save(tmp_path / "b", include_replay=True)
    online_steps(env, load_agent(tmp_path / "b"), 40)  # with them, it trains on
    given_again = load_agent(tmp_path / "a")  # ... as when its demos are given again
    given_again.pretrain(collect_demos(env, make_base_policy(env), 1))
    online_steps(env, given_again, 40)


@pytest.mark.parametrize(("name", "key", "value", "message"), [
    ("iql", "online_success_rows", [10**9], "rows [1000000000] lie outside the online buffer's"),
    ("iql", "online_success_rows", [-1], "rows [-1] lie outside"),  # labelled the last row
    ("iql", "trial_rows", [10**9], "rows [1000000000] lie outside"),  # failed at a trial's end
    ("rlpd", "actor_steps", -1, "negative counters ['actor_steps']"),
])
def test_an_edited_agent_counter_or_row_is_named(tmp_path, name, key, value, message):
    """An IndexError at load, or a checkpoint loaded with rows or counters no run makes
    (agents21)."""
    import gymnasium as gym

    from agents import make_agent
    from tests.agents.helpers import agent_kwargs

    env = gym.make("InsertBenchStandIn/PegPoint-v0")
    agent = make_agent(name, env.observation_space, env.action_space,
                       {"hidden": (8,), "buffer_size": 64}, seed=0, **agent_kwargs(name, env))
    agent.save(tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "agent.json").read_text())
    assert key in meta["extra"]
    meta["extra"][key] = value
    (tmp_path / "a" / "agent.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=re.escape(message)):
        load_agent(tmp_path / "a", **agent_kwargs(name, env))
