"""`python -m benchmark.check_serl` refuses impossible counts with one usage line (exit 2) before
it trains, instead of a RuntimeError/ValueError traceback (review session)."""

from __future__ import annotations

import sys

import pytest

from benchmark import check_serl


@pytest.mark.parametrize(("args", "message"), [
    (["--threads", "0"], "argument --threads: must be an integer >= 1, got '0'"),
    (["--steps", "-1"], "argument --steps: must be an integer >= 0, got '-1'"),
    (["--demos", "-1"], "argument --demos: must be an integer >= 0, got '-1'"),
    (["--eval-every", "x"], "argument --eval-every: must be an integer >= 0, got 'x'"),
    (["--eval-episodes", "0"], "argument --eval-episodes: must be an integer >= 1, got '0'"),
    (["--target", "21"], "--target must be in 1..20 (successes of 20), got 21"),
])
def test_bad_counts_are_one_usage_line(args, message, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["check_serl", *args, "--out", "run"])
    with pytest.raises(SystemExit) as stop:
        check_serl.main()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].endswith(message), err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("args", "names"), [
    (["-e", "goal_noise_mm=NaN"], "goal_noise_mm"),
    (["-c", "no_such_field=1"], "no_such_field"),
    # These ended in a Typer BadParameter, TypeError or FileNotFoundError traceback:
    (["-e", "goal_noise_mm"], "--env expects KEY=VALUE, got 'goal_noise_mm'"),
    (["-e", "grayscale=True"], "values are JSON, write grayscale=true"),
    (["-c", "utd_ratio"], "--config expects KEY=VALUE, got 'utd_ratio'"),
    (["-e", "bogus=1"], "got an unknown kwarg 'bogus'"),
    (["-e", "reward=classifier", "-e", "reward_classifier=no_such_dir"],
     "no reward classifier in no_such_dir"),
])
def test_bad_env_or_agent_values_are_one_usage_line(args, names, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["check_serl", "--steps", "10", *args, "--out", "run"])
    with pytest.raises(SystemExit) as stop:
        check_serl.main()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert names in err.splitlines()[-1], err
    assert "Traceback" not in err and "kwargs (" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("args", "policy_keys"), [
    (["--pixels"], {"tcp_pose", "tcp_vel", "wrench", "wrist", "side"}),
    ([], None),  # from state VICE's policy keeps its default: the state entries
    (["--pixels", "-c", "obs_keys=wrist,tcp_pose"], "wrist,tcp_pose"),  # as typed: the config
    # converts it
])
def test_pixel_vice_policy_reads_the_cameras(args, policy_keys, monkeypatch, capsys, tmp_path):
    """--pixels --agent vice: the policy reads the cameras as pixel RLPD does (VICE's own default
    is the state entries, its env always having cameras for the classifier); an explicit
    obs_keys wins."""
    import tests.standin_env  # noqa: F401  (registers the stand-in)

    seen = {}

    def fake_train(task_id, agent, **kwargs):
        seen.update(kwargs)
        raise ValueError("stop before training")

    monkeypatch.setattr(check_serl, "TASKS",
                        {"usb": "tests.standin_env:InsertBenchStandIn/PegPoint-v0"})
    monkeypatch.setattr(check_serl, "ENV_KWARGS",  # the stand-in has no obs_frame
                        {k: v for k, v in check_serl.ENV_KWARGS.items() if k != "obs_frame"})
    monkeypatch.setattr(check_serl, "train", fake_train)
    monkeypatch.setattr(sys, "argv", ["check_serl", "--agent", "vice", "-e", "reward=vice",
                                      *args, "--out", str(tmp_path / "run")])
    with pytest.raises(SystemExit):
        check_serl.main()
    assert "stop before training" in capsys.readouterr().err
    keys = seen["config"].get("obs_keys")
    assert (set(keys) if isinstance(keys, tuple) else keys) == policy_keys
    assert seen["env_kwargs"]["obs_mode" if args else "reward"] == (
        "state+pixels" if args else "vice")


@pytest.mark.parametrize(("target", "episodes", "needed"), [
    (18, 20, 18), (18, 50, 45), (18, 30, 27), (18, 25, 23), (18, 10, 9), (20, 50, 50),
    (1, 50, 3), (19, 100, 95),
])
def test_target_is_a_rate_of_20_scaled_to_the_episodes(target, episodes, needed):
    """--target 18 is 90% at any --eval-episodes: the fewest successes of N at >= 18/20."""
    assert check_serl.target_successes(target, episodes) == needed
    assert needed / episodes >= target / 20 > (needed - 1) / episodes


@pytest.mark.parametrize(("args", "episodes", "held", "short"), [
    ([], 20, 18, 17),  # the old commands: 20 episodes, 18 of them
    (["--eval-episodes", "50"], 50, 45, 44),
    (["--eval-episodes", "50", "--target", "19"], 50, 48, 47),
])
def test_eval_episodes_reach_train_and_the_early_stop(args, episodes, held, short, monkeypatch,
                                                      capsys, tmp_path):
    seen = {}

    def fake_train(task_id, agent, **kwargs):
        seen.update(kwargs)
        raise ValueError("stop before training")

    monkeypatch.setattr(check_serl, "train", fake_train)
    monkeypatch.setattr(sys, "argv", ["check_serl", "--early-stop", "3", *args,
                                      "--out", str(tmp_path / "run")])
    with pytest.raises(SystemExit):
        check_serl.main()
    assert "stop before training" in capsys.readouterr().err
    assert seen["eval_episodes"] == episodes
    stop = seen["stop_when"]
    assert stop([{"successes": 0}] + [{"successes": held}] * 3)
    assert not stop([{"successes": held}, {"successes": short}, {"successes": held}])
    assert not stop([{"successes": held}] * 2)


def test_eval_episodes_run_that_many_distinct_seeds_and_name_them(monkeypatch, capsys,
                                                                  tmp_path):
    """A real (stand-in) run: every evaluation has N episodes on N different env seeds, and the
    printed steps-to-target says "of N"."""
    import json

    import tests.standin_env  # noqa: F401  (registers the stand-in)

    monkeypatch.setattr(check_serl, "TASKS",
                        {"usb": "tests.standin_env:InsertBenchStandIn/PegPoint-v0"})
    monkeypatch.setattr(check_serl, "ENV_KWARGS",  # the stand-in has no obs_frame
                        {k: v for k, v in check_serl.ENV_KWARGS.items() if k != "obs_frame"})
    monkeypatch.setattr(sys, "argv", ["check_serl", "--agent", "sac", "--steps", "0",
                                      "--eval-every", "0", "--demos", "0",
                                      "--eval-episodes", "3", "--out", str(tmp_path / "run")])
    check_serl.main()
    out = capsys.readouterr().out
    assert "/3 [" in out
    # 3/3 is 100%, the --target of 18/20 scaled up to whole episodes: it printed "(90%)".
    assert "env steps to >= 3/3 (100%; --target 18/20) held to the end:" in out
    entries = json.loads((tmp_path / "run" / "evaluations.json").read_text())
    assert [len(e["episodes"]) for e in entries] == [3]
    assert len({r["seed"] for r in entries[0]["episodes"]}) == 3


@pytest.mark.parametrize("agent", ["hil_serl", "hg_dagger"])
def test_agents_with_an_operator_print_its_intervened_transitions(agent, monkeypatch, capsys,
                                                                    tmp_path):
    """HG-DAgger's run counted its interventions but printed none (the line read HIL-SERL's own
    counter, which HG-DAgger has not): both print the runner's count."""
    import json

    import tests.standin_env  # noqa: F401  (registers the stand-in)

    monkeypatch.setattr(check_serl, "TASKS",
                        {"usb": "tests.standin_env:InsertBenchStandIn/PegPoint-v0"})
    monkeypatch.setattr(check_serl, "ENV_KWARGS",  # the stand-in has no obs_frame
                        {k: v for k, v in check_serl.ENV_KWARGS.items() if k != "obs_frame"})
    monkeypatch.setattr(sys, "argv", ["check_serl", "--agent", agent, "--steps", "40",
                                      "--eval-every", "0", "--demos", "2", "--eval-episodes", "1",
                                      "-c", "hidden=16,16", "-c", "batch_size=8",
                                      "-c", "operator_trigger_deviation=0.001",
                                      "--out", str(tmp_path / "run")])
    check_serl.main()
    counted = json.loads((tmp_path / "run" / "checkpoint" / "runner.json").read_text())
    assert counted["intervention_steps"] > 0
    assert f"intervened transitions: {counted['intervention_steps']}\n" in capsys.readouterr().out
