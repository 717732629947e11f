"""Preset expansion, validation and cell identity."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import math
import tomllib

import pytest
from matrix_helpers import tiny_preset_toml

from benchmark.cells import Cell
from benchmark.preset import PresetError, available_presets, load_preset, parse_preset


def test_shipped_presets_expand_to_the_documented_products() -> None:
    assert {"quick", "paper000", "paper001-baselines"} <= set(available_presets())
    paper000 = load_preset("paper000")
    # 3 connectors x 6 methods x 3 rewards x 2 goal noises x 3 seeds.
    assert len(paper000.cells) == 3 * 6 * 3 * 2 * 3
    for cell in paper000.cells:
        pixels = cell.env_kwargs.get("obs_mode") == "pixels"
        assert pixels == (cell.env_kwargs["reward"] == "goal_image")
        if pixels:
            assert cell.env_kwargs["image_size"] == 32 and cell.env_kwargs["grayscale"] is True
        assert (cell.budget_steps == 0) == (cell.agent == "p_controller")
        assert cell.eval_episodes == 25 and len(cell.eval_seeds) == 25
        assert not set(cell.eval_seeds) & set(paper000.seeds)
    baselines = load_preset("paper001-baselines")
    # 4 connectors x 2 offset ranges x 4 methods x 1 seed (deterministic agents: one seed).
    assert len(baselines.cells) == 4 * 2 * 4 * 1
    assert all(c.budget_steps == 0 for c in baselines.cells)
    assert {c.task_id for c in baselines.cells} == {
        f"InsertBench/Connector-{n}-v1" for n in ("DT12", "Megablock", "NEMA15", "Europlug")}
    assert len(baselines.reference) == 24
    spiral_mega = [e for e in baselines.reference if e.agent == "Spiral search"
                   and "Megablock" in e.task]
    assert sorted((tuple(e.env_kwargs["init_offset_mm"]), e.successes) for e in spiral_mega) == [
        ((0, 10), 15), ((10, 20), 17)]
    quick = load_preset("quick")
    assert 2 <= len(quick.cells) <= 8


def test_config_hash_is_stable_and_ignores_labels() -> None:
    cell = Cell("InsertBench/USB-v0", {"reward": "sparse", "goal_noise_mm": 1.0}, "sac",
                {"lr": 3e-4}, 0, 1000, 100, 2, (10, 11))
    same = Cell("InsertBench/USB-v0", {"goal_noise_mm": 1.0, "reward": "sparse"}, "sac",
                {"lr": 3e-4}, 0, 1000, 100, 2, (10, 11), method="SAC", task_label="USB")
    assert cell.config_hash == same.config_hash
    assert len(cell.config_hash) == 64
    assert dataclasses.replace(cell, seed=1).config_hash != cell.config_hash
    assert dataclasses.replace(cell, eval_seeds=(10, 12)).config_hash != cell.config_hash
    assert dataclasses.replace(cell, agent_config={"lr": 1e-3}).config_hash != cell.config_hash
    # Pinned: changing the canonical form silently would orphan every stored result.
    canonical = (
        '{"agent":"sac","agent_config":{"lr":0.0003},"budget_steps":1000,"env_kwargs":'
        '{"goal_noise_mm":1.0,"reward":"sparse"},"eval_episodes":2,"eval_every":100,'
        '"eval_seeds":[10,11],"seed":0,"task_id":"InsertBench/USB-v0"}'
    )
    assert cell.config_hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert cell.config_hash.startswith("5610a8293760")


def _data(**changes: object) -> dict:
    data = tomllib.loads(tiny_preset_toml())
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": "red"}, "unknown key"),
        ({"axes": {"goal_noise_mm": []}}, "non-empty list"),
        ({"seeds": []}, "non-empty list"),
        ({"tasks": []}, "tasks"),
        ({"eval_seeds": [500, 501]}, "eval_episodes"),
        # The training episodes' seeds, which the check compared with the run seeds instead:
        # the clash failed every cell at run time, and {"start": 0} was refused for nothing.
        ({"eval_seeds": {"start": 100_000_000}},
         r"evaluation seeds \[100000000, 100000001, .*\] are training seeds of run seed 0"),
        ({"agents": [{"name": "spiral_search", "budget_steps": 100}]}, "scripted"),
        # adv41: a TypeError, a ValueError from dict(), and a NaN entry dropped without a word
        ({"paper_reference": {"source": "x", "entries": 5}}, "'entries' must be a list"),
        ({"paper_reference": {"source": "x", "entries": [5]}}, r"entries\[0\] must be a table"),
        ({"paper_reference": {"source": "x", "entries": [
            {"task": "InsertBench/A-v0", "agent": "Learner", "successes": 1, "trials": 2,
             "env_kwargs": "abc"}]}}, "'env_kwargs' must be a table, got 'abc'"),
        ({"paper_reference": {"source": "x", "entries": [
            {"task": "InsertBench/A-v0", "agent": "Learner", "successes": 1, "trials": 2,
             "env_kwargs": {"goal_noise_mm": float("nan")}}]}}, "must be a finite number"),
        ({"paper_reference": {"source": "x", "entries": [
            {"task": "InsertBench/A-v0", "agent": "Learner", "successes": 1, "trials": 10**17}]}},
         "trials in"),
        # One row pooled both goal-noise variants under the first one's label.
        ({"paper_reference": {"source": "x", "entries": [
            {"task": "InsertBench/A-v0", "agent": "Learner", "successes": 1, "trials": 2}]}},
         r"env_kwargs \{\} pick 2 task variants of InsertBench/A-v0 for Learner \(A-v0 "
         r"goal_noise_mm=0.0, A-v0 goal_noise_mm=1.0\)"),
        ({"paper_reference": {"source": "x", "entries": [
            {"task": "InsertBench/A-v0", "agent": "Learner", "successes": 1, "trials": 2,
             "env_kwargs": {"goal_noise_mm": 0.5}}]}}, "pick 0 task variants"),
        # matrix25: "must be <class 'int'>"
        ({"agents": [{"name": "sac", "budget_steps": 2.5}]},
         "'budget_steps' must be an integer, got 2.5"),
        ({"agents": [{"name": "sac", "budget_steps": 2**63 - 1}]},  # adv41: started training
         r"budget_steps must be in \[0, 1,000,000,000\]"),
        ({"agents": [{"name": "sac", "budget_steps": 10, "eval_every": 0}]}, "eval_every"),
        ({"agents": [{"name": "sac", "budget_steps": 10, "lr": 1}]}, "unknown key"),
        ({"agents": []}, "agents"),
        ({"seeds": [0, 0]}, "duplicates"),
        # Beside "InsertBench/USB-v1" it ran one task twice under one label.
        ({"tasks": ["InsertBench/USB-v1", "envs:InsertBench/USB-v1"]}, "'tasks' has duplicates"),
        ({"rules": [{"when": {"reward": "x"}, "set": {"a": 1}}]}, "neither an axis"),
        ({"rules": [{"when": {"goal_noise_mm": 1.0}}]}, "'set' or 'agent_config' too"),
        ({"rules": [{"when": {"goal_noise_mm": 1.0}, "agent_config": {"sac": {"gamma": 0.9}}}]},
         r"'agent_config' names \['sac'\], not agents of this preset"),
        ({"rules": [{"when": {"goal_noise_mm": 1.0}, "agent_config": {"learner_fixture": 1}}]},
         "'agent_config' a table of agent names, each a table of config fields"),
        ({"axes": {"goal_noise_mm": [0.0, 0.0]}}, "identical"),
        # Two cells, two report rows and twice the weight in the aggregates for one task.
        ({"axes": {"goal_noise_mm": [0, 0.0]}}, r"axis 'goal_noise_mm' has identical values"),
        ({"axes": {"init_offset_mm": [[0, 10], [0.0, 10.0]]}}, "identical values"),
        ({"agents": [{"name": "sac", "budget_steps": 10, "env_kwargs": 1}]}, "env_kwargs"),
        ({"agents": [{"name": "sac", "budget_steps": 10,
                      "env_kwargs": {"goal_noise_mm": 2.0}}]}, "sets the axis"),
        # Found by the review session: these crashed with a bare TypeError or OverflowError,
        # or were accepted and failed only in the cells (Gymnasium refuses negative seeds).
        ({"agents": [{"name": "sac", "budget_steps": 10, "label": ["a"]}]}, "'label'"),
        ({"agents": [{"name": "sac", "budget_steps": 10, "label": ""}]}, "'label'"),
        ({"description": ["x"]}, "'description'"),
        ({"eval_every": True}, "eval_every"),
        # matrix19: a rule on a fixed kwarg's value it never has applied to no cell, unsaid
        ({"env_kwargs": {"reward": "sparse"},
          "rules": [{"when": {"reward": "Sparse"}, "set": {"grasp_noise_mm": 1.0}}]},
         r"reward='Sparse' is never the preset's reward \('sparse'\), so the rule applies to "
         "no cell"),
        # matrix19: true passed as 1 (evaluations after every episode); a TOML date was
        # "TypeError: Object of type datetime is not JSON serializable"
        ({"agents": [{"name": "sac", "budget_steps": 10, "eval_every": True}]}, "eval_every"),
        ({"env_kwargs": {"grasp_noise_mm": datetime.datetime(1979, 5, 27)}},
         r"\[env_kwargs\]: grasp_noise_mm is a TOML date or time \(1979-05-27 00:00:00\); "
         "write a number, or a string in quotes"),
        # matrix23: a rule's `set` was never checked: its -inf and dates failed in the JSON
        # library's words, naming no rule
        ({"rules": [{"when": {"goal_noise_mm": 1.0}, "set": {"grasp_noise_mm": -math.inf}}]},
         r"rules\[0\].set: grasp_noise_mm must be a finite number, got -inf"),
        ({"rules": [{"when": {"goal_noise_mm": 1.0},
                     "set": {"grasp_noise_mm": datetime.date(1979, 5, 27)}}]},
         r"rules\[0\].set: grasp_noise_mm is a TOML date or time \(1979-05-27\)"),
        ({"eval_episodes": 10**30}, "eval_episodes"),
        ({"seeds": [-1, 0]}, r"\[0, 2\*\*63\)"),
        ({"seeds": [2**64]}, r"\[0, 2\*\*63\)"),
        ({"eval_seeds": {"start": -600}}, "eval_seeds.start"),
        # The name is the default store's file name: these wrote runs/../../escape.sqlite,
        # the hidden runs/.sqlite and runs/a/b.sqlite.
        ({"name": "../../escape"}, "'name' names the store"),
        ({"name": ""}, "'name' names the store"),
        ({"name": "a/b"}, "'name' names the store"),
        # Two labels for one agent: the message said "remove the duplicate axis value".
        ({"agents": [{"name": "sac", "budget_steps": 10},
                     {"name": "sac", "label": "SAC again", "budget_steps": 10}]},
         "agents 'sac' and 'SAC again' are one agent with one config and budget; remove one"),
        # matrix17: two report columns a reader could not tell apart
        ({"agents": [{"name": "sac", "budget_steps": 10, "label": "P "},
                     {"name": "td3", "budget_steps": 10, "label": "P"}]},
         r"agent labels must be unique \(spaces aside\), got \['P ', 'P'\]"),
        # matrix21: run as the latest version under an identity that moves with each new one,
        # then a report that could not be made
        ({"tasks": ["InsertBench/USB"]}, r"task IDs must name their version \(-vN"),
        # matrix21: the later rule's value, or the agent's, won in every cell without a word
        ({"rules": [{"when": {"goal_noise_mm": 1.0}, "set": {"grasp_noise_mm": 1.0}},
                    {"when": {"goal_noise_mm": 1.0}, "set": {"grasp_noise_mm": 2.0}}]},
         r"rules\[0\].set sets grasp_noise_mm = 1.0, which no cell keeps: a later rule or the "
         "agents' env_kwargs set it otherwise wherever the rule applies"),
        ({"rules": [{"when": {"goal_noise_mm": 1.0}, "set": {"grasp_noise_mm": 1.0}}],
          "agents": [{"name": "p_controller", "budget_steps": 0,
                      "env_kwargs": {"grasp_noise_mm": 0.0}}]},
         r"rules\[0\].set sets grasp_noise_mm = 1.0, which no cell keeps"),
        ({"rules": [{"when": {"goal_noise_mm": 1.0}, "agent_config": {"sac": {"gamma": 0.9}}},
                    {"when": {"goal_noise_mm": 1.0}, "agent_config": {"sac": {"gamma": 0.8}}}],
          "agents": [{"name": "sac", "budget_steps": 10}]},
         r"rules\[0\].agent_config.sac sets gamma = 0.9, which no cell keeps: a later rule set"),
        # diff27: its keys never hold together; it was said to be overridden by a later rule
        ({"rules": [{"when": {"goal_noise_mm": 1.0}, "set": {"init_offset_mm": [0, 5]}},
                    {"when": {"goal_noise_mm": 0.0, "init_offset_mm": [0, 5]},
                     "set": {"grasp_noise_mm": 1.0}}]},
         r"rules\[1\] applies to no cell: no cell has goal_noise_mm = 0.0 and init_offset_mm "
         r"= \[0, 5\]"),
        # matrix21: `--agent td3` selected SAC labelled "td3" as well
        ({"agents": [{"name": "sac", "budget_steps": 10, "label": "td3"},
                     {"name": "td3", "budget_steps": 10, "label": "TD3 tuned"}]},
         r"agents\[0\]'s label 'td3' names another agent of the preset"),
        # render_mode=0 failed in every cell; disable_env_checker took any string as true.
        ({"env_kwargs": {"render_mode": 0}}, r"\['render_mode'\] are gym.make's"),
        ({"agents": [{"name": "sac", "budget_steps": 10,
                      "env_kwargs": {"disable_env_checker": "abc"}}]}, "gym.make's"),
    ],
)
def test_invalid_presets_are_rejected_with_a_clear_message(changes: dict, message: str) -> None:
    with pytest.raises(PresetError, match=message):
        parse_preset(_data(**changes), "test")


def test_a_rules_agent_config_applies_to_its_cells_and_agent_only() -> None:
    """paper000 turns SAC's image shift off in its goal-image cells alone: set on the agent, the
    setting (a no-op there) changed the hashes of its 72 state cells too."""
    data = _data(rules=[{"when": {"goal_noise_mm": 1.0},
                         "agent_config": {"learner_fixture": {"synthetic_flag": 7}}}])
    cells = parse_preset(data, "test").cells
    for cell in cells:
        told = cell.method == "Learner" and dict(cell.env_kwargs)["goal_noise_mm"] == 1.0
        assert ("synthetic_flag" in cell.agent_config) == told
    unchanged = {c.config_hash for c in parse_preset(_data(), "test").cells}
    assert sum(c.config_hash not in unchanged for c in cells) == sum(
        c.method == "Learner" and dict(c.env_kwargs)["goal_noise_mm"] == 1.0 for c in cells)


def test_an_agents_env_kwargs_apply_to_its_cells_only() -> None:
    data = _data()
    data["env_kwargs"] = {"reward": "sparse"}
    data["agents"][1]["env_kwargs"] = {"reward": "vice", "image_size": 32}
    cells = parse_preset(data, "test").cells
    learner = [c for c in cells if c.method == "Learner"]
    others = [c for c in cells if c.method != "Learner"]
    assert learner and others
    assert all(dict(c.env_kwargs) == {"reward": "vice", "image_size": 32,
                                      "goal_noise_mm": c.env_kwargs["goal_noise_mm"]}
               for c in learner)
    assert all(c.env_kwargs["reward"] == "sparse" and "image_size" not in c.env_kwargs
               for c in others)
    # the axis still labels the rows, and the agent's cells keep their axis values
    assert {c.task_label for c in learner} == {c.task_label for c in others}


def test_a_rule_reads_each_agents_own_settings() -> None:
    """A rule's `when` read the preset's kwargs alone: a sparse-only rule set its image size in
    the cells of an agent whose env_kwargs make them dense (matrix22)."""
    data = _data(env_kwargs={"reward": "sparse"},
                 rules=[{"when": {"reward": "sparse"}, "set": {"image_size": 32}}])
    data["agents"][1]["env_kwargs"] = {"reward": "dense"}
    cells = parse_preset(data, "test").cells
    assert {(c.env_kwargs["reward"], c.env_kwargs.get("image_size")) for c in cells} == {
        ("sparse", 32), ("dense", None)}
    # ... and may test a value only that agent's env_kwargs give: refused as one that "is
    # never the preset's reward" (diff29)
    data["rules"] = [{"when": {"reward": "dense"}, "set": {"image_size": 48}}]
    cells = parse_preset(data, "test").cells
    assert {(c.env_kwargs["reward"], c.env_kwargs.get("image_size")) for c in cells} == {
        ("sparse", None), ("dense", 48)}
    # An agent's config that no cell of its keeps, as the rule never applies to them, says so
    data["rules"] = [{"when": {"reward": "sparse"},
                      "agent_config": {"learner_fixture": {"synthetic_flag": 7}}}]
    with pytest.raises(PresetError, match="which no cell keeps: the rule applies to none of "
                                          "learner_fixture's cells"):
        parse_preset(data, "test")


def test_unknown_preset_name_lists_the_shipped_ones() -> None:
    with pytest.raises(PresetError, match="paper000"):
        load_preset("no-such-preset")


def test_every_shipped_preset_is_runnable() -> None:
    from benchmark.preset import check_runnable

    for name in available_presets():
        check_runnable(load_preset(name).cells)


def test_a_rule_may_test_what_an_earlier_rule_sets() -> None:
    """Rules apply in order: the check that a rule matches some cell compared its 'when' with
    the fixed kwargs alone, and refused a rule on what an earlier one sets (diff23)."""
    data = _data(env_kwargs={"obs_mode": "state"}, axes={"reward": ["sparse", "dense"]},
                 rules=[{"when": {"reward": "dense"}, "set": {"obs_mode": "pixels"}},
                        {"when": {"obs_mode": "pixels"}, "set": {"image_size": 32}}])
    cells = parse_preset(data, "chained").cells
    dense = {c.env_kwargs.get("image_size") for c in cells if c.env_kwargs["reward"] == "dense"}
    assert dense == {32}
    # ... also a key no fixed kwarg names: "neither an axis nor an env kwarg" (matrix20).
    data = _data(axes={"reward": ["sparse", "dense"]},
                 rules=[{"when": {"reward": "sparse"}, "set": {"goal_noise_mm": 1.0}},
                        {"when": {"goal_noise_mm": 1.0}, "set": {"image_size": 32}}])
    cells = parse_preset(data, "chained").cells
    assert {c.env_kwargs.get("image_size") for c in cells
            if c.env_kwargs["reward"] == "sparse"} == {32}
    assert all("image_size" not in c.env_kwargs for c in cells if c.env_kwargs["reward"] ==
               "dense")


def test_a_registered_env_that_is_no_insertion_task_is_refused_before_any_cell() -> None:
    """CartPole-v1 passed the check (it builds) and failed every cell, "not an InsertBench
    insertion environment" (matrix19)."""
    from benchmark.preset import check_runnable

    data = _data(tasks=["CartPole-v1"], axes={},
                 agents=[{"name": "p_controller", "budget_steps": 0}])
    with pytest.raises(PresetError, match="task CartPole-v1 with {}: not an InsertBench "
                                          "insertion environment: CartPoleEnv"):
        check_runnable(parse_preset(data, "cartpole").cells)


@pytest.mark.parametrize("value", [["sparse"], {"a": 1}])
def test_a_reward_that_is_no_name_is_one_message_before_any_cell(value) -> None:
    """A list or table as `reward` was "TypeError: unhashable type", which hid the message
    the check had collected for it (matrix21)."""
    from benchmark.preset import check_runnable

    data = _data(tasks=["InsertBench/USB-v1"], axes={}, env_kwargs={"reward": value},
                 agents=[{"name": "p_controller", "budget_steps": 0}])
    with pytest.raises(PresetError, match=r"the preset cannot run \(1 problem\(s\), no cell "
                                          r"started\): task InsertBench/USB-v1 with .*reward"):
        check_runnable(parse_preset(data, "reward").cells)


def test_two_agents_apart_only_by_a_default_written_out_are_refused_before_any_cell() -> None:
    """matrix23: SAC and SAC with learning_starts=1000 (its default) ran every cell twice,
    reported as two methods with identical numbers; apart by a value, or by env kwargs, they
    are two methods."""
    from benchmark.preset import check_runnable

    sac = {"name": "sac", "budget_steps": 100}
    data = _data(tasks=["InsertBench/USB-v1"], axes={},
                 agents=[sac, sac | {"label": "SAC2", "config": {"learning_starts": 1000}}])
    with pytest.raises(PresetError, match=r"\(1 problem\(s\), no cell started\): agents 'sac' "
                                          r"and 'SAC2' are one agent with one config and "
                                          r"budget on the same tasks once their configs and env "
                                          r"kwargs are written out in full"):
        check_runnable(parse_preset(data, "defaults").cells)
    # An env default spelled out (USB-v1's reward): the same cells, and a report that said
    # the methods "ran on different env kwargs" (matrix24).
    data["agents"] = [sac, sac | {"label": "SAC2", "env_kwargs": {"reward": "sparse"}}]
    with pytest.raises(PresetError, match=r"agents 'sac' and 'SAC2' are one agent"):
        check_runnable(parse_preset(data, "defaults").cells)
    data["agents"] = [sac, sac | {"label": "SAC2", "config": {"learning_starts": 10}},
                      sac | {"label": "SAC3", "env_kwargs": {"grasp_noise_mm": 0.5}},
                      sac | {"label": "SAC4", "env_kwargs": {"reward": "dense"}}]
    check_runnable(parse_preset(data, "defaults").cells)
    # A learned reward renders cameras a state task's key leaves out: 32 and 64 px are two
    # (diff32: refused as twins).
    vice = {"name": "vice", "budget_steps": 100}
    data["env_kwargs"] = {"reward": "vice"}
    data["agents"] = [vice | {"label": "V32", "env_kwargs": {"image_size": 32}},
                      vice | {"label": "V64", "env_kwargs": {"image_size": 64}}]
    check_runnable(parse_preset(data, "defaults").cells)
    # ...and a default spelled out under it is still one agent (diff34: accepted as two)
    data["agents"] = [vice, vice | {"label": "V2", "env_kwargs": {"grasp_noise_mm": 0.0}}]
    with pytest.raises(PresetError, match=r"agents 'vice' and 'V2' are one agent"):
        check_runnable(parse_preset(data, "defaults").cells)


def test_an_observation_entry_the_task_lacks_is_refused_before_any_cell() -> None:
    """obs_keys were checked only when the networks were built: every cell of the agent
    started and failed in turn, its failures stored among the results (matrix24)."""
    from benchmark.preset import check_runnable

    data = _data(tasks=["InsertBench/USB-v1", "InsertBench/DSub-v1"], axes={},
                 agents=[{"name": "sac", "budget_steps": 100,
                          "config": {"obs_keys": ["tcp_pose", "wrench_typo"]}}])
    with pytest.raises(PresetError, match=r"\(2 problem\(s\), no cell started\): agent sac on "
                                          r"USB-v1: obs_keys \['wrench_typo'\] not in the "
                                          r"observation space; it has \['tcp_pose', "):
        check_runnable(parse_preset(data, "keys").cells)
    data["agents"][0]["config"]["obs_keys"] = ["tcp_pose", "wrench"]
    check_runnable(parse_preset(data, "keys").cells)


def test_a_blind_search_told_where_the_socket_is_is_refused_before_any_cell() -> None:
    """obs_frame='task' measures tcp_pose from above the socket: the searches' "hold the start
    x, y" steered there, 5/5 from 10-20 mm where they score 0/5 (agents20)."""
    from benchmark.preset import check_runnable

    data = _data(tasks=["InsertBench/USB-v0"], axes={"obs_frame": ["start", "task"]},
                 agents=[{"name": "spiral_search", "budget_steps": 0},
                         {"name": "p_controller", "budget_steps": 0}])
    with pytest.raises(PresetError, match=r"\(1 problem\(s\), no cell started\): agent "
                                          r"spiral_search: spiral_search searches around the x, "
                                          r"y an episode starts at"):
        check_runnable(parse_preset(data, "frames").cells)
    data["axes"] = {"obs_frame": ["start"]}
    check_runnable(parse_preset(data, "frames").cells)


def test_evaluation_on_the_demonstration_seeds_is_refused_before_any_cell() -> None:
    """RLPD collects its demos from seeds of their own: a preset evaluating there parsed, then
    failed every such cell at run time."""
    from benchmark.preset import check_runnable

    data = _data(eval_seeds={"start": 90_000_000},
                 agents=[{"name": "rlpd", "budget_steps": 100}])
    with pytest.raises(PresetError, match=r"agent rlpd: eval_seeds overlap the demonstration "
                                          r"seeds from 90000000"):
        check_runnable(parse_preset(data, "demos").cells)
    # VICE's recorded failures reset from seeds of their own too (accepted before: review).
    data = _data(eval_seeds={"start": 85_000_000},
                 agents=[{"name": "vice", "budget_steps": 100,
                          "config": {"vice_failure_episodes": 5}}])
    with pytest.raises(PresetError, match=r"agent vice: eval_seeds overlap the recorded "
                                          r"failures' seeds from 85000000"):
        check_runnable(parse_preset(data, "failures").cells)
    # ODA's target-task demonstrations, as train refuses them (review).
    data = _data(eval_seeds={"start": 90_000_003}, agents=[{"name": "oda", "budget_steps": 100}])
    with pytest.raises(PresetError, match=r"agent oda: eval_seeds overlap the demonstration"):
        check_runnable(parse_preset(data, "context").cells)
    # VICE's classifier is bound into one env: two worlds failed every such cell at run time.
    data = _data(agents=[{"name": "vice", "budget_steps": 4, "num_envs": 2,
                          "env_kwargs": {"reward": "vice"}}])
    with pytest.raises(PresetError, match=r"agent vice: reward='vice' trains with one env"):
        check_runnable(parse_preset(data, "vice").cells)


def test_matrix_run_reports_every_typo_before_the_first_cell(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from benchmark.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "typos.toml").write_text("""
name = "typos"
tasks = ["InsertBench/USB-v0", "InsertBench/USBB-v0"]
seeds = [0]
eval_episodes = 2
eval_seeds = { start = 100 }
eval_every = 50
[env_kwargs]
goal_noise = 1.0
[[agents]]
name = "sacc"
budget_steps = 100
[[agents]]
name = "sac"
budget_steps = 100
config = { gama = 0.9 }
[[agents]]
name = "td3"
budget_steps = 100
config = { batch_size = -1 }
""")
    result = CliRunner().invoke(app, ["matrix", "run", "typos.toml", "--no-progress"])
    assert result.exit_code == 2
    text = "".join(result.output.replace("│", "").split())  # however the error box wraps
    for expected in ("InsertBench/USBB-v0", "'goal_noise'; did you mean 'goal_noise_mm'",
                     "unknown agent 'sacc'", "gama", "batch_size", "no cell started"):
        assert "".join(expected.split()) in text, expected
    assert not (tmp_path / "runs" / "typos-artifacts").exists()


def test_task_versions_put_each_task_at_each_version_on_the_same_seeds() -> None:
    own = load_preset("paper001-baselines")
    both = load_preset("paper001-baselines", task_versions=(1, 2))
    assert both.name == "paper001-baselines-v1-v2"
    assert load_preset("paper001-baselines", task_versions=(2,)).name == "paper001-baselines-v2"
    # `run --task-version 1 --task-version 2`, then `report --task-version 2 --task-version 1`:
    # the report used to look for another store (runs/...-v2-v1.sqlite) and find none.
    assert load_preset("paper001-baselines", task_versions=(2, 1)).name == both.name
    tasks = [c.task_id for c in both.cells]
    assert list(dict.fromkeys(tasks))[:2] == ["InsertBench/Connector-DT12-v1",
                                              "InsertBench/Connector-DT12-v2"]
    # The v1 half is the preset's own cells (same hashes: one store can hold both); each v2 cell
    # differs from its v1 twin in the task ID alone.
    own_hashes = {c.config_hash for c in own.cells}
    v1 = [c for c in both.cells if c.task_id.endswith("-v1")]
    v2 = [c for c in both.cells if c.task_id.endswith("-v2")]
    assert {c.config_hash for c in v1} == own_hashes and len(v2) == len(v1)
    for a, b in zip(v1, v2, strict=True):
        assert dataclasses.replace(a, task_id=b.task_id, task_label=b.task_label) == b
    assert len(both.reference) == 2 * len(own.reference)
    assert {e.task for e in both.reference} == {c.task_id for c in both.cells}


@pytest.mark.parametrize(("tasks", "versions", "message"), [
    (["InsertBench/USB"], (2,), "no -vN"),
    (["InsertBench/USB-v0", "InsertBench/USB-v1"], (2,), "duplicates"),
    (["InsertBench/USB-v1"], (2, 2), "distinct"),
    (["InsertBench/USB-v1"], (-1,), "distinct"),
])
def test_task_versions_refuse_what_they_cannot_rewrite(tasks, versions, message) -> None:
    from benchmark.preset import at_task_versions

    with pytest.raises(PresetError, match=message):
        parse_preset(at_task_versions(_data(tasks=tasks), versions), "test")


def test_evaluation_seeds_from_zero_do_not_clash_with_run_seeds():
    """Run seeds 0 and 1 reset their training episodes from their own ranges, not from 0 and 1:
    evaluation seeds 0, 1, ... were refused as a clash that was none."""
    data = _data(eval_seeds={"start": 0})
    cells = parse_preset(data, "tiny").cells
    assert cells and all(min(c.eval_seeds) == 0 for c in cells)


def test_a_preset_file_saved_with_a_bom_loads(tmp_path) -> None:
    """An editor's UTF-8 BOM read as "Invalid statement (at line 1, column 1)" (matrix22)."""
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf" + tiny_preset_toml().encode())
    assert load_preset(tmp_path / "bom.toml").cells
