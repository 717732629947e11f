"""Actor/learner split: transitions and weights flow, the achieved UTD is logged, and actor
processes die with the learner even on kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from benchmark.async_train import train_async
from benchmark.folder_lock import RunInProgress

TASK = "tests.standin_env:InsertBenchStandIn/PegPoint-v0"
TINY_SAC = {"hidden": (16, 16), "batch_size": 8, "learning_starts": 20, "random_steps": 20}


def test_learner_trains_on_transitions_from_two_actor_processes(tmp_path):
    # 100 steps from two actors: whatever the split, one actor runs >= 50 steps, so at least
    # one 50-step episode ends (with 80, a 40/40 split under load ended none).
    result = train_async(TASK, "sac", steps=100, actors=2, config=TINY_SAC, eval_episodes=2,
                         publish_every=5, out_dir=tmp_path)
    assert result["env_steps"] == 100 and result["gradient_steps"] > 0
    assert result["achieved_utd"] == result["gradient_steps"] / 100
    assert result["training_episodes"] >= 1
    assert json.loads((tmp_path / "async.json").read_text())["actors"] == 2
    assert (tmp_path / "agent" / "agent.json").is_file()


def test_utd_log_records_the_achieved_ratio_while_training(tmp_path):
    result = train_async(TASK, "sac", steps=60, config=TINY_SAC, eval_episodes=1,
                         log_every_s=0.01, out_dir=tmp_path)
    log = result["utd_log"]
    assert len(log) >= 2  # during training and at the end
    assert [e["env_steps"] for e in log] == sorted(e["env_steps"] for e in log)
    assert log[-1]["env_steps"] == 60
    assert log[-1]["gradient_steps"] == result["gradient_steps"]
    assert log[-1]["achieved_utd"] == result["achieved_utd"]


def test_no_update_comes_before_a_parts_first_transition(tmp_path, monkeypatch):
    """A resumed run trained on its checkpointed buffer while its actors started (938 of 962
    gradient steps before the first new transition): the achieved UTD measured the actors'
    start-up, and the run learnt otherwise than an uninterrupted one (review)."""
    from agents.sac import SACAgent

    at_first = []
    observe = SACAgent.observe

    def recording(self, transition):
        if len(at_first) < part:
            at_first.append(self.gradient_steps)
        observe(self, transition)

    monkeypatch.setattr(SACAgent, "observe", recording)
    part = 1
    first = train_async(TASK, "sac", steps=40, config=TINY_SAC, eval_episodes=0,
                        out_dir=tmp_path)
    part = 2
    train_async(TASK, "sac", steps=80, config=TINY_SAC, eval_episodes=0, out_dir=tmp_path)
    assert at_first == [0, first["gradient_steps"]]


def test_twin_backend_trains_in_the_runs_setting_on_the_robot_env(tmp_path):
    """The env kwargs reach the robot env on the twin: in the task frame the start offset shows
    in tcp_pose (the start frame would read 0 at every reset), and training runs end to end."""
    import envs  # noqa: F401  (registers the InsertBench tasks)
    from benchmark.async_train import build_env
    from benchmark.train import make_env

    usb = "InsertBench/USB-v1"
    kwargs = {"obs_frame": "task", "goal_noise_mm": 1.0, "init_offset_mm": [0.0, 10.0]}
    env = build_env(usb, kwargs, "twin")
    starts = [env.reset(seed=s)[0]["tcp_pose"][:2] for s in range(2)]
    env.close()
    assert abs(starts[0] - starts[1]).max() > 1e-3  # [m]
    with pytest.raises(ValueError, match="twin"):
        build_env(usb, {"no_such_kwarg": 1}, "twin")
    # The robot's settings as a robot takes them: the watchdog off trained on (diff29)
    with pytest.raises(ValueError, match="rtde_watchdog_hz must be a finite number"):
        build_env(usb, {"rtde_watchdog_hz": None}, "twin")
    # The simulation's cameras name the twin's (both were read whatever it said).
    wrist_only = {"obs_mode": "state+pixels", "image_size": 16, "cameras": ["wrist"]}
    env = build_env(usb, wrist_only, "twin")
    assert env.observation_space.keys() == make_env(usb, wrist_only).observation_space.keys()
    env.close()
    # HIL-SERL: demonstrations and the simulated operator from the robot env's hand controller
    tiny_hil_serl = {"hidden": (16, 16), "batch_size": 8, "num_qs": 2, "utd_ratio": 1,
                     "learning_starts": 20}
    # The learner's env sat idle through training: its evaluation's reset said the RTDE
    # watchdog would have ended the control script; it connects anew.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train_async(usb, "hil_serl", steps=40, backend="twin", env_kwargs=kwargs,
                             config=tiny_hil_serl, demo_episodes=1, eval_episodes=1,
                             out_dir=tmp_path)
    assert not [w for w in caught if "RTDE watchdog" in str(w.message)]
    assert result["backend"] == "twin" and result["env_steps"] == 40
    assert result["gradient_steps"] > 0
    # The operator's steps, logged as `train` logs them (async.json had none).
    saved = json.loads((tmp_path / "agent" / "agent.json").read_text())
    assert result["intervention_steps"] == saved["extra"]["interventions"]
    assert result["intervention_rate"] == result["intervention_steps"] / 40
    assert json.loads((tmp_path / "async.json").read_text())["intervention_steps"] == \
        result["intervention_steps"]


def test_bad_arguments_are_refused_before_any_process_starts(tmp_path):
    with pytest.raises(ValueError, match="backend"):
        train_async(TASK, "sac", steps=10, backend="robot", out_dir=tmp_path)
    with pytest.raises(ValueError, match="actors"):
        train_async(TASK, "sac", steps=10, actors=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"steps must be in \[1, 1,000,000,000\]"):
        train_async(TASK, "sac", steps=10**20, out_dir=tmp_path)  # ran on until killed
    with pytest.raises(ValueError, match=r"actors must be at most 4 per core \(\d+ on this "):
        train_async(TASK, "sac", steps=10, actors=100_000, out_dir=tmp_path)
    with pytest.raises(ValueError, match="log_every_s"):
        train_async(TASK, "sac", steps=10, log_every_s=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="VICE"):
        train_async(TASK, "sac", steps=10, env_kwargs={"reward": "vice"}, out_dir=tmp_path)
    # A scripted agent ended in "AttributeError: 'PControllerAgent' object has no attribute
    # 'env_steps'", after its actor processes had started.
    with pytest.raises(ValueError, match="p_controller does not learn from the actors' "):
        train_async(TASK, "p_controller", steps=10, out_dir=tmp_path)
    # BC collected the actors' steps and trained on none: "0 gradient steps: UTD 0.00".
    with pytest.raises(ValueError, match="bc with online_updates_per_step=0 makes no update"):
        train_async(TASK, "bc", steps=10, out_dir=tmp_path)
    # HIL-SERL with its operator off (no device here: nothing could intervene) trained as
    # RLPD under its name; -3 demos trained on none; an operator budget that grows.
    with pytest.raises(ValueError, match="operator='none' learns from a device's"):
        train_async(TASK, "hil_serl", steps=10, config={"operator": "none"}, out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"demo_episodes must be in \[0, 100,000\], got -3"):
        train_async(TASK, "rlpd", steps=10, demo_episodes=-3, out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"rlpd learns from demonstrations: give demo_episodes"):
        train_async(TASK, "rlpd", steps=10, demo_episodes=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"operator_budget_end must be <= operator_budget_start"):
        train_async(TASK, "hil_serl", steps=10, out_dir=tmp_path,
                    config={"operator_budget_start": 0, "operator_budget_end": 30})
    # agents17: IQL's reward classifier was never trained (every transition relabelled a
    # terminal success, exit 0); ODA failed 18 s in, asking for adapt().
    with pytest.raises(ValueError, match="iql with these settings trains on a recipe's "
                                         "task_id column .* train-async has no --demos for"):
        train_async(TASK, "iql", steps=10, config={"reward_classifier": True}, out_dir=tmp_path)
    with pytest.raises(ValueError, match="oda is given demonstrations of the target task"):
        train_async(TASK, "oda", steps=10, out_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _actors(pid: int) -> list[int]:
    """The actor processes of learner `pid`: spawn starts a resource tracker too; actors are the
    children running Python code."""
    return [c for c in _children(pid)
            if "insertbench" in Path(f"/proc/{c}/cmdline").read_text()
            or "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_actor_processes_die_when_the_learner_is_killed_with_sigkill_and_it_resumes(
        tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    code = (  # heavy imports under __main__ only: spawned actors re-import this module
        "if __name__ == '__main__':\n"
        "    from benchmark.async_train import train_async\n"
        f"    train_async({TASK!r}, 'sac', steps=10**9, actors=2, config={TINY_SAC!r},\n"
        f"                checkpoint_every=20, out_dir={str(out)!r})\n"
    )
    script = tmp_path / "learner.py"
    script.write_text(code)
    learner = subprocess.Popen([sys.executable, str(script)], cwd=os.getcwd(),
                               env=os.environ | {"PYTHONPATH": os.getcwd()})
    try:
        deadline = time.time() + 300  # imports and env set-up come first (slow when loaded)
        actors: list[int] = []
        while time.time() < deadline and (len(actors) < 2 or not (
                out / "checkpoint" / "learner.json").is_file()):
            actors = _actors(learner.pid)
            time.sleep(0.5)
        assert len(actors) == 2, "actors did not start"
        learner.send_signal(signal.SIGKILL)
        learner.wait()
        deadline = time.time() + 60
        while time.time() < deadline and any(_alive(a) for a in actors):
            time.sleep(0.2)
        assert not any(_alive(a) for a in actors), "actor processes outlived the learner"
    finally:
        if learner.poll() is None:
            learner.kill()
    # The killed run resumes from its last checkpoint, on the command line as users type it
    # (the folder holds only checkpoint/: not "other files"), and eval reads its task there.
    from benchmark.cli import app
    from benchmark.train_cli import resolve_checkpoint

    assert resolve_checkpoint(out)[1]["task_id"] == TASK
    saved = _learner(out)["env_steps"]
    (out / "agent").mkdir(exist_ok=True)  # as a kill during the final save leaves it
    assert saved >= 20 and saved % 20 == 0
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        app(["train-async", "--task", TASK, "--agent", "sac", "--steps", str(saved + 20),
             "--actors", "2", "--eval-episodes", "0", "--out", "run",
             "-c", "hidden=16,16", "-c", "batch_size=8", "-c", "learning_starts=20",
             "-c", "random_steps=20"])  # as strings, the checkpoint's config typed
    assert exit_info.value.code == 0, capsys.readouterr()
    assert _learner(out)["env_steps"] == saved + 20 and _learner(out)["resumes"] == 1


def test_a_residual_agent_learns_from_its_actors_base_actions(tmp_path):
    """`train-async --agent residual_sac` used to end in AttributeError: the learner recomputed
    pi_H on its own env, never reset (no start frame) and never the actor's episode anyway."""
    import envs  # noqa: F401  (registers the InsertBench tasks)

    tiny = {"hidden": (16, 16), "batch_size": 8, "learning_starts": 10, "random_steps": 10}
    result = train_async("InsertBench/USB-v2", "residual_sac", steps=30, config=tiny,
                         eval_episodes=1, out_dir=tmp_path)
    assert result["env_steps"] == 30 and result["gradient_steps"] > 0


def test_eval_episodes_and_out_are_checked_before_training(tmp_path, monkeypatch, capsys):
    """`train-async --eval-episodes 0` used to train for the whole budget, then fail with
    `cannot summarise zero episodes` and write no async.json; an --out that is a file failed
    only when the trained agent was saved. Now 0 skips the final evaluation (as `train`), and a
    negative count or a file --out is refused before any actor starts."""
    from benchmark.cli import app

    def cli(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_info:
            app(list(args))
        out, err = capsys.readouterr()
        return exit_info.value.code, out, err

    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("a file")
    base = ["train-async", "--task", TASK, "--agent", "sac", "--steps", "30",
            "-c", "hidden=16,16", "-c", "batch_size=8", "-c", "learning_starts=20",
            "-c", "random_steps=20"]
    for extra, message in ((["--eval-episodes", "-1", "--out", "runs/a"], "eval_episodes must"),
                           (["--out", "notes.txt"], "notes.txt is not a directory"),
                           # trained the whole budget, then failed to save under the file
                           (["--out", "notes.txt/run"],
                            "notes.txt/run is not a directory (under notes.txt, a file)")):
        code, _, err = cli(*base, *extra)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0], err
        assert not Path("runs").exists()
    code, out, err = cli(*base, "--eval-episodes", "0", "--out", "runs/a", "--progress")
    assert code == 0, err
    assert "no evaluation -> runs/a" in out
    assert "sac InsertBenchStandIn/PegPoint-v0 async" in err and "30/30" in err  # the bar
    result = json.loads(Path("runs/a/async.json").read_text())
    assert result["env_steps"] == 30 and result["evaluation"] is None
    assert (Path("runs/a/agent") / "agent.json").is_file()


def test_the_learners_time_limit_is_an_option(tmp_path, monkeypatch, capsys):
    """The learner's 3,600 s limit was not on the command line: `train-async --steps 50000` on
    a slow machine ended in a TimeoutError after an hour that no option could raise."""
    from benchmark.cli import app

    def cli(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exit_info:
            app(list(args))
        return exit_info.value.code, capsys.readouterr().err

    monkeypatch.chdir(tmp_path)
    base = ["train-async", "--task", TASK, "--agent", "sac", "--steps", "1000000",
            "-c", "hidden=16,16", "--out", "runs/a"]
    code, err = cli(*base, "--timeout-s", "nan")
    assert code == 2 and "timeout_s must be > 0, got nan" in err, err
    code, err = cli(*base, "--timeout-s", "2")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert "did not reach 1000000 env steps in 2 s (timeout_s, `--timeout-s`" in lines[0]
    # A controlled stop, not an internal error ("TimeoutError: ... --debug shows the traceback")
    assert "TimeoutError" not in err and "--debug" not in err, err


def test_an_actor_prints_warnings_as_one_line_as_the_cli_does(monkeypatch, capsys):
    """Actors printed Python's two-line form (file, line, source echo and Gymnasium's colour
    codes) of the warnings the command line prints as one line each."""
    import warnings

    import benchmark.actor_boot as boot
    import benchmark.async_train as async_train

    monkeypatch.setattr(boot, "die_with_parent", lambda parent_pid: None)
    monkeypatch.setattr(async_train, "actor_loop",
                        lambda *args: warnings.warn("InsertBench/USB-v1 is out of date",
                                                    DeprecationWarning, stacklevel=1))
    sigint = signal.getsignal(signal.SIGINT)  # an actor ignores Ctrl-C: not this process
    try:
        with warnings.catch_warnings():  # restores showwarning afterwards
            warnings.simplefilter("always")
            boot.run_actor(os.getpid())
    finally:
        signal.signal(signal.SIGINT, sigint)
    assert capsys.readouterr().err == "insertbench: warning: InsertBench/USB-v1 is out of date\n"


def test_actors_exit_at_once_when_the_learner_stops(tmp_path, monkeypatch):
    """Actors blocked at exit flushing transitions the learner no longer read: each join took
    its whole 10 s, then SIGKILL, and the wait counted in wall_clock_s and env_steps_per_s."""
    import benchmark.async_train as async_train

    stops = []

    def timed(processes, transitions, grace_s=10.0):
        start = time.perf_counter()
        original(processes, transitions, grace_s)
        stops.append((time.perf_counter() - start, [p.exitcode for p in processes]))

    original = async_train._stop_actors
    monkeypatch.setattr(async_train, "_stop_actors", timed)
    config = TINY_SAC | {"buffer_size": 1_000}
    result = train_async(TASK, "sac", steps=600, actors=2, config=config, eval_episodes=0,
                         out_dir=tmp_path)
    (seconds, exitcodes), = stops
    assert exitcodes == [0, 0], exitcodes  # they exited, not killed (-9)
    assert seconds < 5.0, seconds
    recorded = json.loads((tmp_path / "async.json").read_text())
    assert recorded["wall_clock_s"] == result["wall_clock_s"]
    assert recorded["env_kwargs"] == {} and recorded["seed"] == 0  # what eval reads


def test_one_env_step_has_no_rate(tmp_path):
    """A part's acting time starts at its first transition: 1 step over ~0 s read 174,277 env
    steps/s (serl18)."""
    result = train_async(TASK, "sac", steps=1, actors=1, config=TINY_SAC, eval_episodes=0,
                         out_dir=tmp_path)
    assert result["env_steps"] == 1 and result["env_steps_per_s"] is None


def test_the_cli_keeps_train_async_in_a_folder_of_its_own_and_eval_checks_its_task(
        tmp_path, monkeypatch, capsys):
    """train-async wrote agent/ beside a train run's run.json, and eval then scored that agent
    as the run's; eval ignored the task (and env kwargs) a train-async run was trained on."""
    from benchmark.cli import app

    def cli(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exit_info:
            app(list(args))
        out, err = capsys.readouterr()
        return exit_info.value.code, out + err

    monkeypatch.chdir(tmp_path)
    Path("mine").mkdir()
    Path("mine/run.json").write_text("{}")
    base = ["train-async", "--task", TASK, "--agent", "sac", "--steps", "30",
            "-c", "hidden=16,16", "-c", "batch_size=8", "-c", "learning_starts=20",
            "-c", "random_steps=20", "--eval-episodes", "0"]
    code, err = cli(*base, "--out", "mine")
    assert code == 2 and "--out mine holds other files and no train-async run (async.json)" \
        in err, err
    for extra, message in ((["--task", "InsertBench/Nope-v0"], "unknown task"),
                           (["--seed", str(2**64)], "seed must be an integer in [0, 2**63)"),
                           (["--eval-episodes", "100001"], "eval_episodes must be an integer"),
                           (["-e", "bogus=1"], "keyword argument 'bogus'")):
        code, err = cli(*base, "--out", "runs/a", *extra)
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not Path("runs").exists()
    code, err = cli(*base, "--out", "runs/a", "-e", "max_episode_steps=20")
    assert code == 0, err
    code, err = cli("eval", "--task", "InsertBench/USB-v1", "--checkpoint", "runs/a")
    assert code == 2 and f"runs/a was trained on {TASK}, not InsertBench/USB-v1" in err, err
    code, out = cli("eval", "--task", TASK, "--checkpoint", "runs/a", "--episodes", "1")
    assert code == 0 and "{'max_episode_steps': 20}" in out, out  # the run's env kwargs


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_the_actors_with_one_line(tmp_path):
    """SIGINT to the terminal's process group (a Ctrl-C) printed the actors' tracebacks, and the
    learner waited 10 s per actor before killing them."""
    command = [sys.executable, "-m", "benchmark.entry", "train-async", "--task", TASK,
               "--agent", "sac", "--steps", "1000000", "--actors", "2", "--eval-episodes", "0",
               "-c", "hidden=16,16", "--out", "runs/a"]
    process = subprocess.Popen(
        command, cwd=tmp_path, start_new_session=True, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_actors(process.pid)) < 2:
        time.sleep(0.5)
    time.sleep(5)  # the actors are acting
    os.killpg(process.pid, signal.SIGINT)
    stopped = time.monotonic()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    # The old wait was 10 s per actor (20 s here); a loaded 2-core machine took 10 s to stop.
    assert time.monotonic() - stopped < 15
    assert [line for line in err.splitlines() if "WARN" not in line] == \
        ["insertbench: error: interrupted"], err


def _learner(out: Path) -> dict:
    return json.loads((out / "checkpoint" / "learner.json").read_text())


def test_a_run_resumes_from_its_checkpoint_with_its_buffers_and_new_episodes(tmp_path):
    """train-async kept no checkpoint: an interrupted run was lost, and a second run into the
    same folder started over. Now it continues: counters, replay, and fresh episode seeds."""
    from agents import load_agent

    first = train_async(TASK, "sac", steps=40, config=TINY_SAC, eval_episodes=0,
                        checkpoint_every=20, out_dir=tmp_path)
    before = _learner(tmp_path)
    assert before["env_steps"] == 40 and first["resumes"] == 0
    assert before["last_episode"] == 0  # 40 steps of a 50-step episode: episode 0 only
    assert len(load_agent(tmp_path / "checkpoint").buffer) == 40
    second = train_async(TASK, "sac", steps=80, config=TINY_SAC, eval_episodes=1,
                         checkpoint_every=20, out_dir=tmp_path)
    after = _learner(tmp_path)
    assert second["env_steps"] == 80 and second["resumes"] == 1
    assert len(load_agent(tmp_path / "checkpoint").buffer) == 80  # the first 40 kept
    # The resumed actor started at episode 1, not at episode 0's start again.
    assert after["last_episode"] >= 1
    assert second["gradient_steps"] > first["gradient_steps"]
    assert second["wall_clock_s"] > first["wall_clock_s"]
    steps = [e["env_steps"] for e in second["utd_log"]]
    assert steps == sorted(steps) and steps[-1] == 80 and 40 in steps
    assert json.loads((tmp_path / "async.json").read_text())["evaluation"]["episodes"] == 1

    with pytest.raises(ValueError, match=r"other settings \(differs in \['seed'\]\)"):
        train_async(TASK, "sac", steps=100, seed=1, config=TINY_SAC, eval_episodes=0,
                    out_dir=tmp_path)
    started = time.monotonic()
    with pytest.warns(UserWarning, match="already holds 80 env steps.*nothing to train"):
        again = train_async(TASK, "sac", steps=60, config=TINY_SAC, eval_episodes=0,
                            out_dir=tmp_path)
    assert again["env_steps"] == 80 and again["utd_log"] == second["utd_log"]
    assert time.monotonic() - started < 60  # no actor waited for, no queue left to flush
    # A resume on a task this code builds otherwise is said, as train's (diff26).
    learner_json = tmp_path / "checkpoint" / "learner.json"
    learner = json.loads(learner_json.read_text())
    assert len(learner["settings"]["task_version_key"]) == 64
    learner["settings"]["task_version_key"] = "0" * 64
    learner_json.write_text(json.dumps(learner))
    with pytest.warns(UserWarning, match=r"under task version key 000000000000; this code "
                                         r"builds it as"):
        train_async(TASK, "sac", steps=80, config=TINY_SAC, eval_episodes=0, out_dir=tmp_path)


def test_a_train_run_folder_is_not_resumed_by_train_async(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "runner.json").write_text("{}")
    with pytest.raises(ValueError, match="checkpoint of `insertbench train`, not of train-async"):
        train_async(TASK, "sac", steps=10, config=TINY_SAC, eval_episodes=0, out_dir=tmp_path)


def test_a_resumed_part_explores_with_other_random_streams():
    """Actors were seeded by run seed and index alone: a resumed actor replayed the first
    part's random exploration action for action, and the buffer got 400 copies."""
    from benchmark.async_train import actor_seed_of

    seeds = {actor_seed_of(0, i, first) for i in range(2) for first in (0, 2, 5)}
    assert len(seeds) == 6
    assert actor_seed_of(3, 1, 4) == actor_seed_of(3, 1, 4)  # deterministic


def test_a_timeout_checkpoints_first_so_the_run_resumes(tmp_path):
    """--timeout-s (or a dead actor) threw away everything since the last checkpoint: with
    --checkpoint-every 0 the whole run, and nothing was written."""
    with pytest.raises(TimeoutError, match="are checkpointed: the same command resumes"):
        train_async(TASK, "sac", steps=10**9, config=TINY_SAC, eval_episodes=0,
                    checkpoint_every=0, timeout_s=8.0, out_dir=tmp_path / "run")
    learner = _learner(tmp_path / "run")  # written, whatever a loaded machine managed in 8 s
    assert learner["utd_log"][-1]["env_steps"] == learner["env_steps"] >= 0


def test_a_damaged_checkpoint_is_refused_not_replaced(tmp_path):
    """A checkpoint without its learner.json was taken for none: a fresh run replaced it, exit
    0. Edited counters resumed wrong (env_steps -500 trained 500 steps too many) or ended in a
    TypeError."""
    import shutil

    train_async(TASK, "sac", steps=30, config=TINY_SAC, eval_episodes=0, out_dir=tmp_path / "a")
    good = (tmp_path / "a" / "checkpoint" / "learner.json").read_text()
    for edit, message in (
            (lambda d: d.update(env_steps=-500), "env_steps must be an integer >= 0"),
            (lambda d: d.update(env_steps=20), "says 20 env steps, its agent learnt from 30"),
            (lambda d: d.update(last_episode=10**15), "past the run's 100,000 training seeds"),
            (lambda d: d.update(wall_clock_s=None), "wall_clock_s must be a finite number"),
            (lambda d: d.update(utd_log=5), "utd_log must be a list")):
        learner = json.loads(good)
        edit(learner)
        (tmp_path / "a" / "checkpoint" / "learner.json").write_text(json.dumps(learner))
        with pytest.raises(ValueError, match=message):
            train_async(TASK, "sac", steps=60, config=TINY_SAC, eval_episodes=0,
                        out_dir=tmp_path / "a")
    (tmp_path / "a" / "checkpoint" / "learner.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        train_async(TASK, "sac", steps=60, config=TINY_SAC, eval_episodes=0,
                    out_dir=tmp_path / "a")
    (tmp_path / "a" / "checkpoint" / "learner.json").unlink()
    with pytest.raises(ValueError, match="has no learner.json .* use another --out"):
        train_async(TASK, "sac", steps=60, config=TINY_SAC, eval_episodes=0,
                    out_dir=tmp_path / "a")
    # Killed between the swap's renames: only checkpoint.old; eval finds its agent too.
    (tmp_path / "a" / "checkpoint" / "learner.json").write_text(good)
    shutil.move(tmp_path / "a" / "checkpoint", tmp_path / "a" / "checkpoint.old")
    shutil.rmtree(tmp_path / "a" / "agent")
    from agents.registry import resolve_agent_dir

    assert resolve_agent_dir(tmp_path / "a") == tmp_path / "a" / "checkpoint.old" / "agent"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fcntl locks")
def test_two_runs_into_one_folder_are_one_error_not_lost_checkpoints(tmp_path):
    """They deleted each other's checkpoint.tmp: one ended in a SafetensorError."""
    import fcntl

    (tmp_path / "a").mkdir()
    with open(tmp_path / "a" / "checkpoint.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RunInProgress, match="another run is writing"):
            train_async(TASK, "sac", steps=30, config=TINY_SAC, eval_episodes=0,
                        out_dir=tmp_path / "a")
    # A run refused before its first checkpoint leaves no folder of its own behind.
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        train_async(TASK, "sac", steps=0, config=TINY_SAC, out_dir=tmp_path / "b")
    with pytest.raises(ValueError):
        train_async(TASK, "sac", steps=10, config={"hidden": "x"}, out_dir=tmp_path / "c")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_an_actor_cut_off_mid_message_stops_the_learner_instead_of_blocking_it():
    """A pixel transition (~50 kB) is written to the pipe in pieces; an actor killed between
    them left one shared queue's reader waiting for the rest for good (past --timeout-s, no
    word). On a pipe of its own, whose write end only the actor held, the rest is end of file."""
    import multiprocessing as mp
    import struct
    import threading

    from benchmark.async_train import ActorGone, _receive

    live_reader, live_writer = mp.Pipe(duplex=False)
    cut_reader, cut_writer = mp.Pipe(duplex=False)
    live_writer.send((0, "a whole transition"))
    assert _receive([live_reader, cut_reader], 1.0, limit=10) == [(0, "a whole transition")]
    # The header of a 50 kB message and its first kilobyte, then the actor's end closes.
    os.write(cut_writer.fileno(), struct.pack("!i", 50_000) + bytes(1_000))
    cut_writer.close()
    outcome = []

    def receive() -> None:
        try:
            _receive([live_reader, cut_reader], 1.0, limit=10)
        except ActorGone as gone:
            outcome.append(gone.args[0])

    reading = threading.Thread(target=receive, daemon=True)
    reading.start()
    reading.join(timeout=30)
    assert not reading.is_alive(), "the learner blocked on a message cut off mid-way"
    assert outcome == [1]  # the cut pipe's index: its actor is named in the error


def test_actors_are_sent_the_acting_modules_alone():
    """Every publish pickled the whole learner to each actor, critics and targets included
    (RLPD: 6.1 MB where acting reads 0.29 MB), loaded inside the actor's control loop
    (serl21)."""
    import gymnasium as gym
    import numpy as np

    import tests.standin_env  # noqa: F401  (registers the stand-in)
    from agents import make_agent
    from benchmark.async_train import _load_weights, _weights

    env = gym.make(TASK.split(":")[1])
    config = {"hidden": (16, 16), "num_qs": 2}
    learner, actor = (make_agent("rlpd", env.observation_space, env.action_space, config,
                                 seed=seed) for seed in (0, 1))
    weights = _weights(learner)
    assert set(weights["modules"]) == {"actor", "obs_norm"}
    _load_weights(actor, weights)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(learner.act(obs, deterministic=True),
                                  actor.act(obs, deterministic=True))
    env.close()


def test_an_actor_that_fails_says_why_in_one_line(monkeypatch, capsys):
    """serl22: an actor's error (a safety trip resetting the twin) printed multiprocessing's
    14-line traceback, and the learner's line named only the process."""
    import benchmark.actor_boot as actor_boot
    import benchmark.async_train as async_train

    def trips(*args):
        raise RuntimeError("safety trip while resetting: force 130 N")

    monkeypatch.setattr(actor_boot, "die_with_parent", lambda pid: None)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # the test process keeps Ctrl-C
    monkeypatch.setattr(async_train, "actor_loop", trips)
    with pytest.raises(SystemExit) as exit_info:
        actor_boot.run_actor(os.getpid())
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == ("insertbench: MainProcess: RuntimeError: safety trip "
                                       "while resetting: force 130 N\n")
