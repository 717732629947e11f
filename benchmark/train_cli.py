"""``insertbench train`` and ``insertbench eval``: the runner on the command line.

    insertbench train --task InsertBench/USB-v0 --agent residual_sac --seed 0 --steps 20000 \\
        --config utd_ratio=2 --config hidden=256,256 --env goal_noise_mm=1
    insertbench eval --task InsertBench/USB-v0 \\
        --checkpoint runs/InsertBench_USB-v0/residual_sac/seed0 --episodes 50

Heavy imports (torch) happen inside the commands so ``insertbench --help`` stays fast.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException  # Typer >= 0.29 vendors Click

from benchmark.cells import MAX_EVAL_EPISODES, MAX_TRAIN_STEPS
from benchmark.cli_options import (
    EnvOption,
    TorchThreadsOpt,
    build_env,
    check_output_dir,
    check_output_file,
    check_run_dir,
    check_task,
    parse_env_kwargs,
    parse_key_values,
    set_torch_threads,
)
from envs.json_files import write_json

#: The registered agents (`agents.agent_names()`, kept in step by a test): importing `agents`
#: for the help would load torch at every command's start.
AGENT_NAMES = ("awac", "bc", "hg_dagger", "hil_serl", "iql", "localize", "oda", "p_controller",
               "random_search", "residual_sac", "residual_td3", "rlpd", "sac", "spiral_search",
               "state_iql", "straight_down", "td3", "td3_lfd", "vice")
AGENT_HELP = f"Agent name: {', '.join(AGENT_NAMES)}."


def parse_config_overrides(items: list[str] | None) -> dict[str, str]:
    """``["utd_ratio=2", "hidden=256,256"]`` -> dict of strings, as typed: the typed agent config
    converts them, ``hidden=[256,256]`` and ``obs_keys=["wrist","side"]`` included (brackets
    stripped here left the JSON form's quotes inside the names)."""
    try:
        return parse_key_values(items, "--config")
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None


def resolve_checkpoint(path: Path) -> tuple[Path, dict[str, Any] | None]:
    """Agent checkpoint dir for a run dir, checkpoint dir or agent dir, plus the description of
    the run that wrote it (`train`'s run.json, `train-async`'s async.json or, for an interrupted
    one, its checkpoint's learner.json: task, env kwargs)."""
    from agents.checkpoint import read_json
    from agents.registry import resolve_agent_dir
    from benchmark.async_train import LEARNER_JSON

    try:
        agent_dir = resolve_agent_dir(path)
    except FileNotFoundError as err:
        raise typer.BadParameter(str(err)) from err
    # Only the run's own description: `train` writes <run>/checkpoint/agent beside
    # <run>/run.json, `train-async` <out>/agent beside <out>/async.json. Any ancestor's (up to
    # the working directory) lent a copied agent another run's task and env kwargs.
    home = agent_dir.resolve().parent
    # Only a run's `agent` folder: an export into another run's folder under a name of its own
    # was scored on that run's task, silently (agents23)
    candidates = [home / "run.json", home / "async.json"] if agent_dir.name == "agent" else []
    if home.name in ("checkpoint", "checkpoint.old"):
        # A train-async checkpoint's learner.json holds its settings: the description of a
        # run interrupted before its async.json.
        candidates = [home.parent / "run.json", home.parent / "async.json",
                      home / LEARNER_JSON]
    for file in candidates:  # a train-async run's task was not checked
        if file.is_file():
            try:
                run = read_json(file, "run")
            except ValueError as err:
                raise typer.BadParameter(str(err)) from None
            if file.name == LEARNER_JSON and isinstance(run, dict):
                run = run.get("settings")
            # A list of kwargs ended in "cannot convert dictionary update sequence ...".
            if not isinstance(run, dict) or not isinstance(run.get("env_kwargs") or {}, dict):
                raise typer.BadParameter(f"{file} is not a run description (a "
                                         "JSON object whose env_kwargs is an object)")
            _check_run_agent(agent_dir, run, file)
            return agent_dir, run
    return agent_dir, None


def _check_run_agent(agent_dir: Path, run: dict[str, Any], file: Path) -> None:
    """BadParameter when the checkpoint in ``agent_dir`` is another agent than the run
    description ``file`` beside it names: a policy exported into another run's checkpoint was
    scored under that run's task and kwargs without a word."""
    from agents.checkpoint import read_meta

    named = run.get("agent")
    try:
        held = read_meta(agent_dir).get("agent")
    except ValueError:  # named by load_agent, which reads it next
        return
    if isinstance(named, str) and held is not None and held != named:
        raise typer.BadParameter(f"{agent_dir} holds a {held} checkpoint, but its run's "
                                 f"{file.name} describes a {named} run: not that run's agent")


def train_command(
    task: Annotated[str, typer.Option(help="Gymnasium task ID, e.g. InsertBench/USB-v0.")],
    agent: Annotated[str, typer.Option(help=AGENT_HELP)],
    seed: Annotated[int, typer.Option(help="Run seed, in [0, 2**63).")] = 0,
    steps: Annotated[int, typer.Option(
        help=f"Total env steps, in [0, {MAX_TRAIN_STEPS:,}].")] = 10_000,
    config: Annotated[
        list[str] | None, typer.Option("--config", "-c", help="Agent config override k=v.")
    ] = None,
    env: EnvOption = None,
    out: Annotated[Path | None, typer.Option(
        help="Run directory (resumes if present); default "
             "runs/<task, / as _>/<agent>/seed<seed>.")] = None,
    eval_every: Annotated[int, typer.Option(
        help="Env steps between evaluations, each at the first episode end past its step "
             "(0: only at the end).")] = 5_000,
    eval_episodes: Annotated[int, typer.Option(
        help=f"Episodes per evaluation, in [0, {MAX_EVAL_EPISODES:,}].")] = 10,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Env steps between checkpoints (default: eval_every; "
                                 "0: only at the end).")
    ] = None,
    demos: Annotated[
        Path | None,
        typer.Option(help="Demos for pretrain: a .npz dataset or a `dataset collect` or "
                          "`dataset recipe` folder."),
    ] = None,
    demo_episodes: Annotated[
        int | None,
        typer.Option(help="Collect this many demos with the task's hand controller (agents "
                          "that learn from demos: 20 unless --demos is given)."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    num_envs: Annotated[
        int, typer.Option(help="Worlds stepped at once on threads (--steps a multiple).")
    ] = 1,
    torch_threads: TorchThreadsOpt = None,
    teleop: Annotated[
        str | None,
        typer.Option(help="Human interventions (HIL-SERL, HG-DAgger) from a device: "
                     "spacemouse or keyboard; replaces the agent's simulated operator."),
    ] = None,
) -> None:
    """Train an agent on a task; re-running with the same --out resumes from its checkpoint."""
    from rich.console import Console

    from benchmark.folder_lock import RunInProgress
    from benchmark.train import train

    check_task(task)
    for option, value in (("--eval-every", eval_every), ("--checkpoint-every", checkpoint_every)):
        if value is not None and value < 0:  # -1 was taken as "only at the end" on trust
            raise typer.BadParameter(f"must be >= 0 env steps (0: only at the end), got {value}",
                                     param_hint=option)
    check_run_dir(out)  # `--out .`: the run among your files
    set_torch_threads(torch_threads)
    device = None
    try:
        hook = None
        if teleop is not None:
            from benchmark.train import make_env
            from envs.intervention import TeleopHook, open_teleop

            try:
                device = open_teleop(teleop)
            except (ImportError, RuntimeError) as err:
                raise ValueError(str(err)) from err
            probe = make_env(task, parse_env_kwargs(env))
            hook = TeleopHook(device, probe.action_space)
            probe.close()
        result = train(
            task, agent, seed=seed, steps=steps,
            config=parse_config_overrides(config),
            env_kwargs=parse_env_kwargs(env),
            out_dir=out, eval_every=eval_every, eval_episodes=eval_episodes,
            checkpoint_every=checkpoint_every, demos=demos, demo_episodes=demo_episodes,
            progress=progress, num_envs=num_envs, intervene=hook,
        )
    except RunInProgress as err:  # not a bad value: no "Invalid value", no "see --help"
        raise ClickException(str(err)) from None
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    finally:
        if hasattr(device, "close"):  # the keyboard gives the terminal back
            device.close()
    console = Console()
    console.print(f"trained {result.steps} step{'s' * (result.steps != 1)}, {result.episodes} "
                  f"episode{'s' * (result.episodes != 1)} -> {result.out_dir}",
                  markup=False)
    if result.summaries:
        _print_summary(console, result.summaries[-1])


def train_async_command(
    task: Annotated[str, typer.Option(help="Gymnasium task ID, e.g. InsertBench/USB-v0.")],
    agent: Annotated[str, typer.Option(help=AGENT_HELP)],
    steps: Annotated[int, typer.Option(help="Env steps the learner trains on.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Run seed.")] = 0,
    actors: Annotated[int, typer.Option(help="Actor processes.")] = 1,
    backend: Annotated[str, typer.Option(help="sim, or twin (the real/ digital twin).")] = "sim",
    config: Annotated[
        list[str] | None, typer.Option("--config", "-c", help="Agent config override k=v.")
    ] = None,
    env: EnvOption = None,
    out: Annotated[Path, typer.Option(
        help="Output directory; a train-async run there resumes from its last checkpoint (same "
             "settings), up to --steps in all.")] = Path("runs/async"),
    checkpoint_every: Annotated[int, typer.Option(
        help="Env steps between checkpoints (0: only at the end).", min=0)] = 1_000,
    eval_episodes: Annotated[
        int, typer.Option(help="Final evaluation episodes (0: none).")
    ] = 10,
    timeout_s: Annotated[float, typer.Option(
        help="Stop with an error if the learner has not had --steps transitions by then [s] "
             "(inf: no limit).")] = 3_600.0,
    torch_threads: TorchThreadsOpt = None,
    progress: Annotated[bool | None, typer.Option(
        "--progress/--no-progress",
        help="A progress bar of the learner's env steps and the achieved UTD [default: where "
             "stderr is a terminal].", show_default=False)] = None,
) -> None:
    """Actor/learner training (SERL): actors act in their own processes while the learner
    trains; prints the achieved update-to-data ratio. Re-running with the same --out resumes
    from its checkpoint. Actors act on one torch thread each; --torch-threads is the
    learner's."""
    from benchmark.async_train import ActorsDied, run_folder_entries, train_async
    from benchmark.folder_lock import RunInProgress

    check_task(task)
    set_torch_threads(torch_threads)
    # Its own folder: it wrote agent/ beside a train run's run.json, and eval scored that agent
    # as the run's.
    check_output_dir(out, "--out", own="async.json", what="train-async run",
                     ignore=run_folder_entries(out))
    try:
        result = train_async(
            task, agent, steps=steps, seed=seed, actors=actors, backend=backend,  # type: ignore[arg-type]
            config=parse_config_overrides(config),
            env_kwargs=parse_env_kwargs(env), out_dir=out,
            eval_episodes=eval_episodes, timeout_s=timeout_s, checkpoint_every=checkpoint_every,
            progress=progress,
        )
    except (RunInProgress, ActorsDied, TimeoutError) as err:  # stops it checkpointed before:
        raise ClickException(str(err)) from None  # no internal error (serl23)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    evaluation = result["evaluation"]
    success = ("no evaluation" if evaluation is None else
               f"success {evaluation['success_rate']:.2f}")
    rate = "-" if result["env_steps_per_s"] is None else f"{result['env_steps_per_s']:.1f}"
    helped = (f"; {result['intervention_steps']} intervened steps "
              f"({result['intervention_rate']:.0%})" if result["intervention_steps"] else "")
    typer.echo(f"{result['env_steps']} env steps, {result['gradient_steps']} gradient steps: "
               f"achieved UTD {result['achieved_utd']:.2f} at {rate} env steps/s{helped}; "
               f"{success} -> {out}")


#: What a run folder holds of its own (`train`, `train-async`): `eval --json-out` there wrote
#: over the run's history, description or checkpoint without a word (bench19).
RUN_FILES = ("run.json", "async.json", "evaluations.json", "pretrain.json", "demos.npz",
             "context.npz", "learning_curve.png", "checkpoint.lock")
RUN_FOLDERS = ("checkpoint", "checkpoint.old", "checkpoint.tmp", "agent", "tb")


def _check_not_the_runs(path: Path, agent_dir: Path) -> None:
    """Refuse an output file that is one of the evaluated run's own (`RUN_FILES`) or lies in
    its checkpoint, agent or TensorBoard folders (`RUN_FOLDERS`) or in the agent's folder."""
    target = path.resolve()
    agent_dir = agent_dir.resolve()
    home = agent_dir.parent
    root = home.parent if home.name in ("checkpoint", "checkpoint.old") else home
    owned = [agent_dir]
    if home.name in ("checkpoint", "checkpoint.old"):  # an interrupted train-async run's
        owned.append(home)  # learner.json, which no run.json or async.json names yet (diff24)
    # A train-async run writes async.json at its end: until then its lock and checkpoint say
    # it is one (its checkpoint.lock, renamed over, let a second run in: diff25).
    if any((root / name).is_file() for name in ("run.json", "async.json", "checkpoint.lock",
                                                "checkpoint/learner.json")):
        owned += [root / name for name in RUN_FOLDERS]
        if target.parent == root and target.name in RUN_FILES:
            raise typer.BadParameter(f"{path} is the evaluated run's own {target.name}; write "
                                     "the evaluation elsewhere", param_hint="--json-out")
    for folder in owned:
        if target.is_relative_to(folder):
            raise typer.BadParameter(f"{path} lies in the evaluated run's {folder.name} folder; "
                                     "write the evaluation elsewhere", param_hint="--json-out")


def eval_command(
    checkpoint: Annotated[Path, typer.Option(help="Run, checkpoint or agent directory.")],
    task: Annotated[str | None, typer.Option(
        help="Gymnasium task ID, e.g. InsertBench/USB-v0; default: the run's (run.json).")
    ] = None,
    episodes: Annotated[int, typer.Option(help="Evaluation episodes (fixed seeds).", min=1,
                                          max=MAX_EVAL_EPISODES)] = 20,
    env: EnvOption = None,
    json_out: Annotated[
        Path | None, typer.Option(help="Write per-episode records and summary here.")
    ] = None,
    allow_other_task: Annotated[
        bool, typer.Option(help="Evaluate a checkpoint trained on another task (transfer).")
    ] = False,
    video: Annotated[
        Path | None, typer.Option(help="Write an MP4 of the first episode (the side camera at "
                                       "640x480), and beside it NAME.tasks.json.")
    ] = None,
    torch_threads: Annotated[int | None, typer.Option(
        help="torch CPU threads: a policy's actions, and so its episodes, depend on the count "
             "(default: the run's, else torch's).")] = None,
) -> None:
    """Evaluate a checkpoint on the fixed evaluation seeds; prints success rate with a 95% CI.

    The env kwargs are the run's (run.json), updated by any --env. The seeds are the run's
    evaluation seeds (consecutive from its first; a run without them: the default ones). A
    checkpoint whose run was trained on another task is refused unless --allow-other-task. The
    policy runs on the CPU, whatever device it was trained on.
    """
    from rich.console import Console

    from agents import agent_spec, load_agent
    from agents.checkpoint import read_meta
    from agents.registry import check_action_scale
    from benchmark.evaluate import evaluate
    from benchmark.learned_reward import (
        bind_reward_classifier,
        check_same_classifier,
        classifier_sha256,
        find_vice_wrapper,
    )
    from benchmark.rollout_cli import TaskVideo, check_video_path
    from benchmark.train import check_agent_frame, make_base_policy, make_env
    from envs.episode import summarize

    if task is not None:
        check_task(task)
    if json_out is not None:  # checked before the episodes, not after them
        check_output_file(json_out, "--json-out")
    if video is not None:
        check_video_path(video)
        if json_out is not None and os.path.abspath(json_out) in (
                os.path.abspath(video), os.path.abspath(video.with_suffix(".tasks.json"))):
            raise typer.BadParameter(f"{json_out} is the video's own file (it writes "
                                     f"{video.with_suffix('.tasks.json')} beside it)",
                                     param_hint="--json-out")
    agent_dir, run = resolve_checkpoint(checkpoint)
    if json_out is not None:
        _check_not_the_runs(json_out, agent_dir)
    seeds = _run_eval_seeds(run, episodes)
    _set_eval_threads(torch_threads, run)
    trained_on = run.get("task_id") if run else None
    if task is None:  # the run records it: a user repeated it
        if trained_on is None:
            raise typer.BadParameter(f"{checkpoint} has no run.json naming its task: give "
                                     "--task", param_hint="--task")
        task = trained_on
        check_task(task)
    if trained_on is not None and trained_on != task and not allow_other_task:
        raise typer.BadParameter(
            f"{checkpoint} was trained on {trained_on}, not {task}; pass --allow-other-task "
            "to evaluate it there anyway"
        )
    env_kwargs = dict(run.get("env_kwargs") or {}) if run else {}  # older async.json: none
    explicit = parse_env_kwargs(env)
    env_kwargs |= explicit
    if explicit.get("reward") not in (None, "classifier", "vice"):
        # `--env reward=sparse` scores a learned-reward run's policy alone: the run's classifier
        # settings go with its reward (they were "a learned reward needs both ..." errors).
        for name in ("reward_classifier", "goal_hold_steps"):
            if name not in explicit:
                env_kwargs.pop(name, None)
    # One named by --env is the user's choice; on another task {task} names another one.
    if run and "reward_classifier" not in explicit and trained_on == task:
        try:
            check_same_classifier(run.get("reward_classifier_sha256"),
                                  classifier_sha256(task, env_kwargs), task, env_kwargs,
                                  str(checkpoint))
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--checkpoint") from None
    # render_mode is no task kwarg (not in run.json, nor in the version key)
    render = {"render_mode": "rgb_array"} if video is not None else {}
    environment = build_env(make_env, task, env_kwargs | render)
    try:  # a damaged checkpoint: the file, not a bare JSONDecodeError or SafetensorError
        meta = read_meta(agent_dir)
        name = meta["agent"]
        check_agent_frame(agent_spec(name), env_kwargs)  # as train: a blind search told where
        check_policy_fits(meta, environment, env_kwargs)
        kwargs = {"base_policy": make_base_policy(environment)} \
            if agent_spec(name).needs_base_policy else {}
        # What acting reads alone (no replay buffers: 950 MB against 478 for a pixel SAC run;
        # agents23), but a VICE reward's classifier, which scores the episodes
        agent = load_agent(agent_dir, allow_policy_only=True, device="cpu",
                           acting_only=find_vice_wrapper(environment) is None, **kwargs)
        check_action_scale(agent, environment)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    # A VICE run's evaluations end where its classifier says success, as its training
    # episodes do: without it bound, `eval` ended them by the simulator's success instead.
    if find_vice_wrapper(environment) is not None:
        from agents.checkpoint import POLICY_CONTENTS

        # A policy-only export keeps the acting networks: its classifier would be built
        # untrained (random lengths from one run to the next).
        if (getattr(agent, "reward_classifier", None) is None
                or meta.get("contents") == POLICY_CONTENTS):
            environment.close()
            raise typer.BadParameter(
                f"{checkpoint} has no trained reward classifier of its own (a policy-only "
                "export keeps the acting networks), which reward='vice' scores by; evaluate "
                "it without that env kwarg (--env reward=sparse)")
        bind_reward_classifier(environment, agent)
    if run is None:  # a bare agent dir (a copy, a submission's policy): nothing to check
        warnings.warn(f"{checkpoint} has no run.json of its own: the task and env kwargs it "
                      f"was trained with are unknown, so it runs on {task} with the given --env "
                      "only (no check)", UserWarning, stacklevel=2)
    frames: list = []
    records = evaluate(environment, agent, episodes, seeds=seeds,
                       frames=frames if video else None)
    summary = summarize(records)
    if video is not None:  # a trained policy's video: `rollout --video` runs scripted ones only
        writer = TaskVideo(video, environment.metadata["render_fps"])
        try:
            writer.add(task, frames)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
    environment.close()
    console = Console()
    import torch

    console.print(f"{name} from {agent_dir} on {task} {env_kwargs}, seeds {_span(seeds)}, "
                  f"{torch.get_num_threads()} torch thread(s)", markup=False)
    _print_summary(console, summary)
    if json_out is not None:
        write_json(json_out,  # a mean over no successes is null, not NaN
                   {"task_id": task, "env_kwargs": env_kwargs, "checkpoint": str(agent_dir),
                    "eval_seeds": seeds, "torch_threads": torch.get_num_threads(),
                    "summary": summary, "episodes": [r.to_dict() for r in records]},
                   non_finite="null")


def _run_eval_seeds(run: dict[str, Any] | None, episodes: int) -> list[int]:
    """`episodes` evaluation seeds, consecutive from the run's first (a matrix cell's start at
    its preset's `eval_seeds`: `eval` used the default ones, and scored other episodes than
    the run's evaluations, agents21); the default seeds for a run that records none. A run
    whose seeds are no such range gives its own, at most as many as it has."""
    from benchmark.evaluate import eval_seeds
    from benchmark.train import seed_clash

    recorded = run.get("eval_seeds") if run else None
    if not (isinstance(recorded, list) and recorded
            and all(isinstance(s, int) and not isinstance(s, bool) for s in recorded)):
        return eval_seeds(episodes)
    if recorded == list(range(recorded[0], recorded[0] + len(recorded))):
        seeds = list(range(recorded[0], recorded[0] + episodes))
    elif episodes <= len(recorded):
        seeds = recorded[:episodes]
    else:
        raise typer.BadParameter(f"the run evaluated on {len(recorded)} seeds of its own (no "
                                 f"range to extend): give --episodes {len(recorded)} or fewer",
                                 param_hint="--episodes")
    clash = seed_clash(run["seed"], seeds) if isinstance(run.get("seed"), int) else None
    if clash:
        raise typer.BadParameter(clash, param_hint="--episodes")
    return seeds


def _set_eval_threads(threads: int | None, run: dict[str, Any] | None) -> None:
    """torch's thread count for `eval`: `threads`, else the run's recorded one (its actions
    depend on it: 1 against 2 threads changed every episode's record, agents21), else
    torch's; a count other than the run's is warned of."""
    import torch

    from envs.tether import available_cores

    recorded = run.get("torch_threads") if run else None
    recorded = recorded if isinstance(recorded, int) and not isinstance(recorded, bool) else None
    if threads is None and recorded is not None and 1 <= recorded <= 4 * available_cores():
        threads = recorded
    set_torch_threads(threads)
    if recorded is not None and torch.get_num_threads() != recorded:
        warnings.warn(f"the run trained and evaluated on {recorded} torch thread"
                      f"{'' if recorded == 1 else 's'}, this evaluation runs on "
                      f"{torch.get_num_threads()}: its episodes may differ from the run's in "
                      "their last digits and beyond", UserWarning, stacklevel=2)


def _span(seeds: list[int]) -> str:
    """Seeds as text: "1000-1019" for a range."""
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 1:
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _space_shapes(space: Any) -> dict[str, tuple[int, ...]] | tuple[int, ...]:
    if hasattr(space, "spaces") and isinstance(space.spaces, dict):
        return {key: tuple(sub.shape) for key, sub in space.spaces.items()}
    return tuple(space.shape)


def check_policy_fits(meta: dict[str, Any], env: Any, env_kwargs: dict[str, Any]) -> None:
    """Refuse an env whose observation keys or shapes, or action shape, the checkpoint was not
    trained on (e.g. `--env obs_mode=pixels` for a state policy): the policy would fail on its
    first step with a bare KeyError. Bounds are not compared (they may differ between tasks)."""
    from agents.checkpoint import space_from_json

    for kind, trained in (("observation", meta["observation_space"]),
                          ("action", meta["action_space"])):
        want = _space_shapes(space_from_json(trained))
        got = _space_shapes(getattr(env, f"{kind}_space"))
        if want != got:
            raise typer.BadParameter(
                f"the checkpoint was trained on {kind}s {want}, but the env with {env_kwargs} "
                f"gives {got}: pass the --env kwargs it was trained with"
            )


def _print_summary(console: Any, summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table("metric", "value")
    table.add_row("success rate", f"{summary['success_rate']:.3f} "
                  f"[{summary['success_ci95_low']:.3f}, {summary['success_ci95_high']:.3f}] "
                  f"({summary['successes']}/{summary['episodes']}, "
                  f"{summary['effective_trials']} distinct "
                  f"episode{'' if summary['effective_trials'] == 1 else 's'})")
    table.add_row("cycle time (successes)", f"{summary['cycle_steps_mean']:.1f} steps, "
                  f"{summary['cycle_time_s_mean']:.2f} s" if summary["successes"] else
                  "- (no success)")
    table.add_row("peak force", f"mean {summary['peak_force_n_mean']:.1f} N, "
                  f"max {summary['peak_force_n_max']:.1f} N")
    table.add_row("mean return", f"{summary['mean_return']:.3f}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Mount ``train`` and ``eval`` on the ``insertbench`` app."""
    app.command("train")(train_command)
    app.command("eval")(eval_command)
    app.command("train-async")(train_async_command)


if __name__ == "__main__":  # `python -m benchmark.train_cli train ...` and so on
    from benchmark.cli import app as insertbench_app

    insertbench_app()
