"""`insertbench real ...`: calibrate the cell and validate a policy sim vs real.

Both commands run against the physical robot (`--host`) or, with `--twin`, against the digital
twin (MuJoCo robot, software RealSense), which is how CI exercises them.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException  # Typer >= 0.29 vendors Click

from benchmark.cells import MAX_EVAL_EPISODES
from benchmark.cli_options import (
    EnvOption,
    check_output_dir,
    check_output_file,
    innermost_message,
    parse_env_kwargs,
)
from real.config import DIGITAL_INPUTS
from real.kinematics import UR_DH

real_app = typer.Typer(
    name="real",
    help="Run the InsertBench tasks on a physical UR arm (or its digital twin).",
    no_args_is_help=True,
)


class Method(StrEnum):
    teach = "teach"
    touch = "touch"


#: The arm models whose kinematics `real.kinematics` knows.
RobotModel = StrEnum("RobotModel", {name: name for name in UR_DH})


class PolicyKind(StrEnum):
    checkpoint = "checkpoint"
    p_controller = "p_controller"


#: The largest seed an option takes: `agents.registry.SEED_LIMIT` - 1, spelled out because
#: importing `agents` loads torch, which no `insertbench real` command needs at start (tested).
SEED_MAX = 2**63 - 1
#: Env kwargs of the cell's environment that the simulation has no counterpart for (the F/T
#: sensor's zeroing and bias, the servo's lookahead and gain, the RTDE watchdog): `validate`
#: gives them to the robot's (or twin's) session only.
CELL_ONLY_KWARGS = ("zero_ft_sensor", "ft_bias", "servo_lookahead_s", "servo_gain",
                    "rtde_watchdog_hz", "wrench_reference")
#: Those of CELL_ONLY_KWARGS that a robot takes in its `real.URConfig` (the twin in its env,
#: but ROBOT_ONLY_KWARGS: the twin is a UR5e with its flange sensor).
ROBOT_ONLY_KWARGS = ("wrench_reference",)
URCONFIG_KWARGS = ("servo_lookahead_s", "servo_gain", "rtde_watchdog_hz", *ROBOT_ONLY_KWARGS)
#: The `robot` a calibration on the digital twin records (a robot's records its host).
TWIN_ROBOT_NAME = "digital-twin"
#: The cell's kwargs that an option of the command sets, and that option: given with --env as
#: well, servo_hz ended in "got multiple values" and continuity_input ran unchecked on the twin.
CELL_KWARG_OPTIONS = {"servo_hz": "--frequency", "continuity_input": "--continuity-input",
                      "goal_images": "`validate --goal-images FILE`",
                      "socket_pose": "--calibration"}
#: The cell's kwargs for scripts only (Python objects, or real.make's own).
CELL_PYTHON_KWARGS = ("safety", "gains", "admittance", "clock", "disconnect_on_close")
#: The longest rehearsal `serve-twin` runs [s]: a week.
MAX_SERVE_S = 7 * 24 * 3600.0


def _check_frequency(value: float) -> float:
    """The UR control rates (`real.config.URConfig`); the twin rehearses them too. NaN, a
    negative or another rate used to reach the servo loop (`1 / servo_hz`) on the twin."""
    if value not in (125.0, 500.0):
        raise typer.BadParameter(f"must be 500 (e-Series) or 125 (CB3) Hz, got {value}")
    return value


def _check_task(task: str) -> str:
    """A task the cell runs (the single-connector tasks), or one short line naming the ID."""
    from envs.tasks import TASKS

    if task not in TASKS:
        import gymnasium as gym

        import envs  # noqa: F401  (registers the IDs)

        what = ("is no single-connector task" if task in gym.registry
                else "is an unknown task")  # NISTBoard-v0 read as "unknown"
        raise typer.BadParameter(f"{task!r} {what}: the cell runs single-connector tasks "
                                 "(see `insertbench list`)")
    return task


def _check_host(value: str | None) -> str | None:
    """None (the twin) or a controller's address: `--host ""` (an unset shell variable) was
    refused by URConfig as an internal error, in validate as a mistake in --env."""
    if value is not None and not value.strip():
        raise typer.BadParameter("an empty address; give the controller's IP (or --twin)")
    if value is not None:
        from real.config import check_robot_host

        try:
            check_robot_host(value)
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None
    return value


Host = Annotated[str | None, typer.Option(help="UR controller IP (omit with --twin).",
                                          callback=_check_host)]
Twin = Annotated[bool, typer.Option(help="Use the digital twin instead of hardware.")]
Frequency = Annotated[float, typer.Option(help="Control rate [Hz]: 500 e-Series, 125 CB3.",
                                          callback=_check_frequency)]
ModelOpt = Annotated[RobotModel, typer.Option(
    help="The arm's model, whose kinematics check its TCP readings (the twin is a UR5e).")]
TaskOpt = Annotated[str, typer.Option(help="Task ID, e.g. InsertBench/USB-v0.",
                                      callback=_check_task)]
CalibrationOpt = Annotated[
    Path | None, typer.Option(help="JSON from `insertbench real calibrate`.")
]
# min/max: with --twin an input the controller does not have (99, -1) was ignored silently.
ContinuityOpt = Annotated[
    int | None, typer.Option(min=DIGITAL_INPUTS.start, max=DIGITAL_INPUTS.stop - 1,
                             help="Digital input wired to connector continuity (0-17).")
]


def _parse_tcp_offset(value: str | None) -> tuple[float, ...] | None:
    """`x,y,z,rx,ry,rz` [m, rad] as a checked tuple (None: the task's TCP)."""
    if value is None:
        return None
    from real.config import check_pose_rotation, check_vector

    try:
        parts = [float(v) for v in value.split(",")]
    except ValueError as err:
        raise typer.BadParameter(f"{err} (give x,y,z,rx,ry,rz in m and rad)") from None
    try:
        offset = check_vector("--tcp-offset", parts, 6, max_norm=1.0)
        check_pose_rotation("--tcp-offset", offset)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    return offset


TcpOffsetOpt = Annotated[
    str | None, typer.Option(help="TCP offset x,y,z,rx,ry,rz [m, rad], flange to the plug's "
                                  "mating face, if your gripper differs from the simulated "
                                  "one (default: the task's, 0,0,<plug>,0,0,0).",
                             callback=_parse_tcp_offset)
]
WristSerial = Annotated[str | None, typer.Option(help="Wrist RealSense serial.")]
SideSerial = Annotated[str | None, typer.Option(help="Side RealSense serial.")]


def _check_target(host: str | None, twin: bool) -> None:
    """Refuse --host with --twin: the twin used to run and --host was ignored, so a session
    meant for the robot at --host ran (and reported) on the twin."""
    if twin and host is not None:
        raise typer.BadParameter(f"give --host ({host}) or --twin, not both")


def validate_lock(task: str) -> str:
    """The lock file of a `validate` session of `task` in its --out
    (`benchmark.folder_lock.run_lock`): one per task, as its logs are."""
    return f"validate_{task.replace('/', '_')}.lock"


def _check_twin_tcp(twin: bool, tcp_offset: tuple[float, ...] | None,
                    model: str = RobotModel.UR5e) -> None:
    if twin and tcp_offset is not None:  # the twin grasps the plug as the simulation does
        raise typer.BadParameter("the twin grasps the plug as the simulation does; the offset "
                                 "is for the robot's own gripper", param_hint="--tcp-offset")
    if twin and model != RobotModel.UR5e:
        raise typer.BadParameter(f"{model} is the robot's model; the twin is a UR5e",
                                 param_hint="--model")


def _check_model_rate(model: str, frequency: float) -> None:
    from real.config import check_model_rate

    try:
        check_model_rate(str(model), frequency)
    except ValueError as err:
        raise typer.BadParameter(f"{err}: give --frequency 125", param_hint="--frequency") \
            from None


def _robot(task: str, host: str | None, twin: bool, frequency: float, seed: int,
           tcp_offset: tuple[float, ...] | None = None, model: str = RobotModel.UR5e):
    from real.config import URConfig

    _check_target(host, twin)
    _check_twin_tcp(twin, tcp_offset, model)
    _check_model_rate(model, frequency)
    if twin:
        from real.twin import DigitalTwinRobot

        return DigitalTwinRobot(task, seed=seed, frequency_hz=frequency), TWIN_ROBOT_NAME
    if host is None:
        raise typer.BadParameter("give --host (the robot's IP) or --twin")
    from envs.scene import tcp_offset_pose
    from envs.tasks import task_spec
    from real.robot import URBackend

    offset = tcp_offset_pose(task_spec(task).connector)
    try:
        return URBackend(URConfig(host=host, frequency_hz=frequency, tcp_offset=tcp_offset,
                                  model=str(model)), offset), host
    except ConnectionError as err:  # a user's cell, not an internal error
        raise ClickException(str(err)) from None


@real_app.command()
def calibrate(
    task: TaskOpt,
    out: Annotated[Path, typer.Option(help="Calibration JSON to write.")] = Path(
        "calibration.json"
    ),
    method: Annotated[Method, typer.Option(help="teach (freedrive) or touch (touch-off).")] = (
        Method.touch
    ),
    host: Host = None,
    twin: Twin = False,
    frequency: Frequency = 500.0,
    tcp_offset: TcpOffsetOpt = None,
    model: ModelOpt = RobotModel.UR5e,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Twin episode seed.")] = 0,
) -> None:
    """Record the socket pose (seated TCP pose, base frame) and the F/T bias to JSON."""
    from envs.tasks import task_spec
    from real.calibration import CalibrationError
    from real.calibration import calibrate as run_calibration
    from real.safety import SafetyTrip

    check_output_file(out, "--out")  # before the operator's freedrive or touch-off
    spec = task_spec(task)
    robot, name = _robot(task, host, twin, frequency, seed, tcp_offset, model)
    if twin:
        prompt = _twin_operator(robot, method.value)
    else:

        def prompt(message: str) -> None:
            # typer.prompt took a closed stdin for a Ctrl-C: "error: interrupted", status 130.
            typer.echo(f"{message} ", nl=False)
            # The link is watched while the operator works: lost there, ur_rtde's reconnect
            # re-uploaded its script (ending freedrive under the operator's hands) and the
            # process crashed, without a word (real23).
            while _waits_for_input(sys.stdin):
                if _link_lost(robot):
                    raise ConnectionError("the link to the robot was lost at the operator's "
                                          "prompt (a pulled cable, a controller reboot?): "
                                          "check the arm, reconnect and calibrate again")
            if not sys.stdin.readline():
                raise CalibrationError("stdin closed at the operator's prompt: calibration "
                                       "needs someone at a terminal to press Enter")

    try:
        calib = run_calibration(robot, spec, method.value, prompt, name, servo_hz=frequency)
    # What the cell did (readings that moved or glitched: ValueError, an internal error's
    # line before; real23) or the link: one line, not an internal error
    except (CalibrationError, SafetyTrip, ConnectionError, ValueError) as err:
        if _link_lost(robot):
            # Tearing ur_rtde down after a lost link crashed the process (a segfault, and
            # this line never printed; real23): say it, and leave without the teardown.
            sys.stderr.write(f"insertbench: error: {err}\n")
            sys.stderr.flush()
            os._exit(1)
        raise ClickException(str(err)) from None
    finally:  # also on Ctrl-C or a trip: ur_rtde's control script kept running on the robot
        if not _link_lost(robot):
            with contextlib.suppress(Exception):  # a dead link: the original error tells
                robot.disconnect()
    calib.save(out)
    typer.echo(f"socket pose (base frame) {[round(v, 5) for v in calib.socket_pose]}")
    typer.echo(f"F/T bias {[round(v, 3) for v in calib.ft_bias]}")
    typer.echo(f"wrote {out}")


def _waits_for_input(stream: Any, timeout_s: float = 0.1) -> bool:
    """Whether `stream` has nothing to read after `timeout_s`; False for a stream select()
    cannot watch (an in-memory one: read it at once)."""
    try:
        return not select.select([stream], [], [], timeout_s)[0]
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation: no fileno
        return False


def _link_lost(robot: Any) -> bool:
    """Whether a robot backend (`URBackend.link_lost`; the twin's never) lost its link."""
    try:
        return bool(getattr(robot, "link_lost", lambda: False)())
    except Exception:  # noqa: BLE001 - ur_rtde in a bad state: take it as lost
        return True


def _twin_operator(robot, method: str):
    """What the operator does at each prompt, on the twin: seat the plug or hold it above."""
    targets = iter(["seated", "lifted"] if method == "teach" else ["above"])

    def prompt(message: str) -> None:
        typer.echo(f"[twin operator] {message}")
        robot.operator_move_to(robot.hand_target(next(targets)))

    return prompt


@real_app.command()
def validate(
    task: TaskOpt,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Agent checkpoint directory (agents.load_agent).")
    ] = None,
    policy: Annotated[
        PolicyKind | None,
        typer.Option(help="checkpoint (default with --checkpoint) or p_controller (paper 000)."),
    ] = None,
    episodes: Annotated[int, typer.Option(min=1, max=MAX_EVAL_EPISODES,
                                          help="Trials on the robot.")] = 20,
    # min=1: `--sim-episodes 0` used to run --episodes trials in sim (0 read as "not given").
    sim_episodes: Annotated[
        int | None, typer.Option(min=1, max=MAX_EVAL_EPISODES,
                                    help="Trials in sim (default: same; with --twin at least "
                                         "--episodes).")
    ] = None,
    calibration: CalibrationOpt = None,
    host: Host = None,
    twin: Twin = False,
    frequency: Frequency = 500.0,
    continuity_input: ContinuityOpt = None,
    tcp_offset: TcpOffsetOpt = None,
    model: ModelOpt = RobotModel.UR5e,
    wrist_serial: WristSerial = None,
    side_serial: SideSerial = None,
    env: EnvOption = None,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX - MAX_EVAL_EPISODES,
                                       help="First evaluation seed.")] = 1000,
    out: Annotated[Path, typer.Option(help="Directory for the table and JSON.")] = Path(
        "runs/real"
    ),
    allow_other_task: Annotated[
        bool, typer.Option(help="Run a checkpoint trained on another task (transfer).")
    ] = False,
    goal_images: Annotated[
        Path | None,
        typer.Option(help="With --env reward=goal_image: the cell's goal images "
                          "(`insertbench real record-goal`)."),
    ] = None,
) -> None:
    """Run the policy N times on the robot and in simulation; write the sim-vs-real table.

    Each trial is appended to <out>/validate_<task>.<setting>.jsonl as it ends; a failed trial
    is recorded with its reason and the session goes on; rerunning the same command resumes."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the simulated tasks)
    import real
    from envs.version_key import task_version_key
    from real.goal_images import load as load_goal_images
    from real.validate import (
        TrialLog,
        checkpoint_policy,
        run_episodes,
        write_report,
    )

    check_output_dir(out, "--out")
    if twin and sim_episodes is not None and sim_episodes < episodes:
        # Its trials on seeds the simulation did not run each counted as a trial of their own:
        # four replays of one episode, micrometres apart, made a 4-trial interval (real28).
        raise typer.BadParameter(
            f"with --twin at least --episodes ({episodes}), {sim_episodes} given: the twin's "
            "trials are counted against the simulated episodes on the same seeds (replays of "
            "one count once); or leave it out",
            param_hint="--sim-episodes")
    kind = policy or (PolicyKind.checkpoint if checkpoint is not None else None)
    if kind is None:
        raise typer.BadParameter("give --checkpoint PATH or --policy p_controller")
    if kind is PolicyKind.checkpoint and checkpoint is None:
        raise typer.BadParameter("--policy checkpoint needs --checkpoint PATH")
    if kind is PolicyKind.p_controller and checkpoint is not None:
        # The checkpoint was ignored: the P-controller ran on the robot in its place.
        raise typer.BadParameter(f"give --checkpoint ({checkpoint}) or --policy p_controller, "
                                 "not both")
    trained_with = None
    if kind is PolicyKind.checkpoint:
        trained_with = _check_trained_on(checkpoint, task, allow_other_task)
    try:  # a damaged agent.json, named (agents23)
        factory = (real.p_controller if kind is PolicyKind.p_controller else
                   checkpoint_policy(checkpoint))
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--checkpoint") from None
    kwargs: dict[str, Any] = parse_env_kwargs(env)
    # The cell's sensor and servo settings go to its session alone: the simulation has no
    # counterpart and refused them, so a CB3 cell could not turn zeroFtSensor off.
    kwargs, cell_only = _split_cell_kwargs(kwargs)
    if kind is PolicyKind.checkpoint:  # as train and eval: a blind search told where (diff25)
        _check_frame_of(checkpoint, kwargs)
    if trained_with is not None and trained_with != kwargs:
        # Not taken over as `eval` does: the robot refuses some simulation kwargs (the sensor
        # model's, grasp noise). Said, since goal noise left out validated an easier task.
        warnings.warn(f"{checkpoint} was trained with env kwargs {trained_with}; this session "
                      f"runs with {kwargs} (pass the run's with --env to validate under them)",
                      UserWarning, stacklevel=1)
    # The simulated half takes the same kwargs: check them before the robot moves. A kwarg the
    # simulation refuses (servo_hz, a typo) used to fail only after every trial on the robot.
    try:
        with warnings.catch_warnings():  # the session's own gym.make gives the advice
            warnings.simplefilter("ignore")
            gym.make(task, **kwargs).close()
    except (TypeError, ValueError) as err:
        raise typer.BadParameter(f"the simulated session refuses it: {innermost_message(err)}",
                                 param_hint="--env") from None
    pixels = "pixels" in kwargs.get("obs_mode", "state") or kwargs.get("reward") == "goal_image"
    serials = [o for o, s in (("--wrist-serial", wrist_serial), ("--side-serial", side_serial))
               if s is not None]
    if serials and (twin or not pixels):  # they were ignored without a word
        raise typer.BadParameter(
            "the twin simulates its cameras" if twin else
            "no camera is read: the observations have no pixels (--env obs_mode=state+pixels)",
            param_hint=" / ".join(serials))
    real_kwargs = kwargs | cell_only
    if kwargs.get("reward") == "goal_image":
        if goal_images is None:
            raise typer.BadParameter("--env reward=goal_image needs the cell's goal images: "
                                     "record them with `insertbench real record-goal`",
                                     param_hint="--goal-images")
        try:
            real_kwargs["goal_images"] = load_goal_images(goal_images, task, for_robot=not twin)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--goal-images") from None
    elif goal_images is not None:
        raise typer.BadParameter("is used only with --env reward=goal_image",
                                 param_hint="--goal-images")

    from benchmark.folder_lock import RunInProgress, run_lock

    # One session of a task writes --out at a time: two appended every seed to one trial log,
    # and a second one opening it could drop a trial the first had just written (newuser20).
    session = contextlib.ExitStack()
    try:
        session.enter_context(run_lock(out, validate_lock(task), f"validate session of {task}"))
    except RunInProgress as err:  # not a bad value: no usage text
        raise ClickException(str(err)) from None
    with session:
        real_env, label = _cell_env(
            task, twin, host, calibration, frequency, continuity_input,
            (wrist_serial, side_serial) if pixels else None, seed, real_kwargs, tcp_offset, model,
        )
        name = "p_controller" if kind is PolicyKind.p_controller else str(checkpoint)
        stem = "validate_" + task.replace("/", "_")
        # A checkpoint by what acting reads, not by its path: another policy saved to the same
        # path resumed into its session as one policy, and ./ckpt against /abs/ckpt was refused.
        policy = (name if checkpoint is None
                  else f"checkpoint sha256:{_checkpoint_sha256(checkpoint)}")
        header = {"task": task, "policy": policy, "env_kwargs": kwargs, "seed": seed}
        # What the robot's trials also depend on: a resume after recalibrating, at another rate or
        # with other goal images was taken as the same session and mixed into one table.
        cell = {"calibration_sha256": _file_sha256(calibration), "frequency_hz": frequency,
                "host": host, "continuity_input": continuity_input,
                "camera_serials": [wrist_serial, side_serial] if pixels else None,
                "goal_images_sha256": _file_sha256(goal_images),
                **({"tcp_offset": list(tcp_offset)} if tcp_offset is not None else {}),
                **({"model": str(model)} if model != RobotModel.UR5e else {}),
                **({"env_kwargs": cell_only} if cell_only else {})}
        runs = {}
        try:
            # Both logs before the first trial: a sim log of another session in --out used to be
            # found only after every trial on the robot had run.
            try:
                logs = {setting: TrialLog(out / f"{stem}.{setting}.jsonl",
                                          {**header, "setting": setting} |
                                          ({"cell": cell} if setting == label else {}))
                        for setting in (label, "sim")}
                for log in logs.values():
                    log.check_version_key(task_version_key(task, kwargs))
            except ValueError as err:  # another session's trials, or a damaged log
                raise typer.BadParameter(str(err), param_hint="--out") from None
            for setting, make_env, n in (
                (label, lambda: real_env, episodes),
                ("sim", lambda: gym.make(task, **kwargs), sim_episodes or episodes),
            ):
                log = logs[setting]
                env = make_env()
                try:
                    runs[setting] = run_episodes(
                        env, factory, n, seed, log, task_id=task, env_kwargs=kwargs,
                        on_trial=lambda r, setting=setting: _echo_trial(setting, r),
                    )
                except RuntimeError as err:  # the robot cannot start an episode
                    stopped = (f"{setting} session stopped after {len(log.results)} trials "
                               f"(kept in {log.path}; rerun the same command to resume): {err}")
                    if _link_lost(real_env.unwrapped.robot):  # as calibrate: no teardown of
                        sys.stderr.write(f"insertbench: error: {stopped}\n")  # ur_rtde, which
                        sys.stderr.flush()  # crashed the process (a segfault; diff28)
                        os._exit(1)
                    raise ClickException(stopped) from None
                finally:
                    env.close()
        except ValueError as err:  # a policy that does not fit the env's kwargs
            raise typer.BadParameter(str(err)) from None
        finally:
            real_env.close()
        try:
            md, js = write_report(out, task, name, {"sim": runs["sim"], label: runs[label]})
        except OSError as err:  # the trials are in their logs: a rerun writes the report only
            raise ClickException(f"the report could not be written ({err}); every trial is kept "
                                 f"in {out}: make room, then rerun the same command to write "
                                 "it") from None
        typer.echo(md.read_text())
        typer.echo(f"wrote {md} and {js}")


def _echo_trial(setting: str, record: Any) -> None:
    """One line per finished trial, on stderr (the report goes to stdout at the end)."""
    peak = "" if record.peak_force_n is None else f", peak {record.peak_force_n:.0f} N"
    # The episode's length is no time to success where the episode runs on past it (a reward
    # that does not end at mating: "success in 50 steps" beside a table's 13).
    outcome = (f"success at step {record.steps_to_success} of {record.steps}" if record.success
               else f"failure after {record.steps} steps")
    typer.echo(f"{setting} trial seed {record.seed}: {outcome}{peak}", err=True)


@real_app.command("record-goal")
def record_goal(
    task: TaskOpt,
    out: Annotated[Path, typer.Option(help="Goal images (.npz) to write.")] = Path(
        "goal_images.npz"
    ),
    calibration: CalibrationOpt = None,
    host: Host = None,
    twin: Twin = False,
    frequency: Frequency = 500.0,
    continuity_input: ContinuityOpt = None,
    tcp_offset: TcpOffsetOpt = None,
    model: ModelOpt = RobotModel.UR5e,
    wrist_serial: WristSerial = None,
    side_serial: SideSerial = None,
    env: EnvOption = None,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Twin episode seed.")] = 0,
) -> None:
    """Seat the plug with paper 000's P-controller and photograph it: the goal images that
    `validate --env reward=goal_image --goal-images FILE` compares each camera image with.

    Give the image kwargs the policy will run with (`--env image_size=32 --env grayscale=true`);
    record again whenever the cameras, the lighting or the board move."""
    from real.goal_images import record, save

    kwargs: dict[str, Any] = parse_env_kwargs(env)
    _split_cell_kwargs(kwargs)
    fixed = sorted({"reward", "obs_mode", "goal_noise_mm", "init_offset_mm"} & set(kwargs))
    if fixed:
        raise typer.BadParameter(f"record-goal sets {', '.join(fixed)} itself (it seats the "
                                 f"plug at the calibrated pose)", param_hint="--env")
    if not twin and wrist_serial is None and side_serial is None:
        raise typer.BadParameter("give --wrist-serial and/or --side-serial (or --twin)")
    if twin and (wrist_serial is not None or side_serial is not None):  # they were ignored
        raise typer.BadParameter("the twin simulates its cameras; leave out --wrist-serial "
                                 "and --side-serial")
    check_output_file(out, "--out")
    if out.suffix != ".npz":  # goal.png held a zip archive of arrays
        raise typer.BadParameter(f"{out} must end in .npz (the images are saved as NumPy "
                                 "arrays, one per camera, with the task ID)", param_hint="--out")
    kwargs.update(reward="dense", obs_mode="state+pixels", goal_noise_mm=0.0,
                  init_offset_mm=(0.0, 0.0))
    cell, _ = _cell_env(task, twin, host, calibration, frequency, continuity_input,
                        (wrist_serial, side_serial), seed, kwargs, tcp_offset, model)
    try:
        images = record(cell, seed=seed)
    except RuntimeError as err:
        raise ClickException(str(err)) from None
    finally:
        cell.close()
    save(out, task, images, on_twin=twin)
    shapes = ", ".join(f"{cam} {image.shape}" for cam, image in images.items())
    typer.echo(f"wrote {out}: {shapes}")


def _file_sha256(path: Path | None) -> str | None:
    """SHA-256 of a file's bytes (None for no file)."""
    import hashlib

    return None if path is None else hashlib.sha256(path.read_bytes()).hexdigest()


def _check_frame_of(checkpoint: Path, kwargs: dict[str, Any]) -> None:
    """`benchmark.train.check_agent_frame` for the agent a checkpoint holds."""
    from agents import agent_spec
    from agents.checkpoint import read_meta
    from agents.registry import resolve_agent_dir
    from benchmark.train import check_agent_frame

    try:  # read_meta names a damaged agent.json (it was "KeyError: 'agent'", as eval says it)
        name = read_meta(resolve_agent_dir(checkpoint))["agent"]
        check_agent_frame(agent_spec(name), kwargs)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--env") from None


def _checkpoint_sha256(checkpoint: Path) -> str:
    """SHA-256 of the files an agent checkpoint acts from (agent.json, its weights)."""
    import hashlib

    from agents.checkpoint import AGENT_JSON, WEIGHTS
    from agents.registry import resolve_agent_dir

    agent_dir = resolve_agent_dir(checkpoint)
    digest = hashlib.sha256()
    for name in (AGENT_JSON, WEIGHTS):
        path = agent_dir / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()


def _split_cell_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`kwargs` (--env) as (the simulation's, the cell's own: CELL_ONLY_KWARGS); a usage error
    for a cell kwarg that an option sets or that only Python can give (a `gains=1` ended in
    an AttributeError line), so `--env zero_ft_sensor=false` reaches a CB3 cell."""
    for name in kwargs:
        if name in CELL_KWARG_OPTIONS:
            raise typer.BadParameter(f"{name} is set with {CELL_KWARG_OPTIONS[name]}, not --env",
                                     param_hint="--env")
        if name in CELL_PYTHON_KWARGS:
            raise typer.BadParameter(f"{name} is for scripts that build the cell with "
                                     f"real.make, not --env", param_hint="--env")
    shared = {k: v for k, v in kwargs.items() if k not in CELL_ONLY_KWARGS}
    return shared, {k: v for k, v in kwargs.items() if k in CELL_ONLY_KWARGS}


def _cell_env(
    task: str,
    twin: bool,
    host: str | None,
    calibration: Path | None,
    frequency: float,
    continuity_input: int | None,
    serials: tuple[str | None, str | None] | None,
    seed: int,
    kwargs: dict[str, Any],
    tcp_offset: tuple[float, ...] | None = None,
    model: str = RobotModel.UR5e,
):
    """The task on the digital twin or on the robot at `host`; returns the env and its label
    in the report ("twin" or "real"). `serials`: None for no cameras, else the (wrist, side)
    RealSense serials, a camera left out where its serial is None (the twin simulates both).
    A `cameras` kwarg, as the simulation's, names the cameras read (each needs its serial)."""
    import real
    from envs.task_options import CAMERAS, check_cameras
    from real.camera import CameraStartError
    from real.factory import CalibrationTcpError, check_cell_kwargs

    kwargs = dict(kwargs)
    named = "cameras" in kwargs
    try:  # a policy trained on the wrist camera alone could not be validated (cameras=both)
        names = check_cameras(kwargs.pop("cameras")) if named else CAMERAS
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--env") from None
    if named and not twin and serials is not None:
        for name, serial in zip(CAMERAS, serials, strict=True):
            option = f"--{name}-serial"
            if (serial is None) == (name in names):
                raise typer.BadParameter(
                    f"--env cameras={list(names)} {'needs' if serial is None else 'leaves out'}"
                    f" the {name} camera", param_hint=option)

    if serials is not None and serials[0] is not None and serials[0] == serials[1]:
        raise typer.BadParameter(f"one camera ({serials[0]}) cannot be both the wrist and the "
                                 "side camera", param_hint="--wrist-serial / --side-serial")
    _check_target(host, twin)
    _check_twin_tcp(twin, tcp_offset, model)
    _check_model_rate(model, frequency)
    if twin and continuity_input is not None:  # it was ignored: the twin reads input 0
        raise typer.BadParameter("is the robot's wiring; the twin's continuity signal is "
                                 "simulated", param_hint="--continuity-input")
    # The robot's URConfig alone takes these (the twin is a UR5e whose wrench is its flange's).
    robot_only = {k: kwargs.pop(k) for k in ROBOT_ONLY_KWARGS if k in kwargs}
    if twin and robot_only:
        raise typer.BadParameter("is the robot's: the twin is a UR5e whose wrench is its flange "
                                 "sensor's", param_hint="--env wrench_reference")
    try:  # the simulation's noiseless, friction_scale, ... ended in "unexpected keyword argument"
        check_cell_kwargs(kwargs)
    except TypeError as err:
        raise typer.BadParameter(str(err), param_hint="--env") from None
    if not twin and host is None:  # first: a twin's calibration was blamed instead (newuser21)
        raise typer.BadParameter("give --host (the robot's IP) or --twin")
    calib = None if calibration is None else _load_calibration(calibration, task, twin, host)
    if not twin and calib is None:
        raise typer.BadParameter("give --calibration (run `insertbench real calibrate`)")
    # The arm's servo settings live in its URConfig (real.make refuses a kwarg that says
    # otherwise: --env servo_gain=400 was "contradicts the robot's URConfig" on a cell).
    settings = robot_only | {k: kwargs[k] if twin else kwargs.pop(k) for k in URCONFIG_KWARGS
                             if k in kwargs}
    try:  # the twin too: a rehearsal ran under settings the robot refuses (a watchdog off; real24)
        config = real.URConfig(host="127.0.0.1" if twin else host, frequency_hz=frequency,
                               continuity_input=continuity_input, tcp_offset=tcp_offset,
                               model=str(model), **settings)
        robot = None if twin else config
    except ValueError as err:
        raise typer.BadParameter(f"the cell refuses it: {err}", param_hint="--env") from None
    try:
        if twin:
            cams = names if serials is not None else ()
            # servo_hz: --frequency 125 (CB3) was ignored on the twin, which ran at 500 Hz.
            return real.make_twin(task, seed=seed, cameras=cams, calibration=calib,
                                  servo_hz=frequency, **kwargs), "twin"
        cameras = [
            real.CameraConfig(name, serial=serial)
            for name, serial in zip(CAMERAS, serials or (None, None), strict=True)
            if serial is not None
        ]
        return real.make(task, robot=robot, cameras=cameras, calibration=calib, **kwargs), "real"
    except CalibrationTcpError as err:
        if twin:  # its advice, --tcp-offset, is refused on the twin (real26)
            raise typer.BadParameter(
                f"{calibration} measured the socket with TCP offset {list(calib.tcp_offset)}, "
                "and the twin holds the plug at the simulation's TCP: it cannot rehearse this "
                "calibration; validate it on the robot", param_hint="--calibration") from None
        raise typer.BadParameter(str(err), param_hint="--calibration") from None
    except ValueError as err:  # a start height outside the safety workspace, ...
        raise typer.BadParameter(f"the cell refuses it: {err}", param_hint="--env") from None
    except (ConnectionError, CameraStartError) as err:  # a user's cell, not an internal error
        raise ClickException(str(err)) from None


def _load_calibration(path: Path, task: str, twin: bool, host: str | None = None):
    """The calibration at `path` for `task` on the twin (`twin`) or a robot at `host`, or a
    usage error naming --calibration (a missing, damaged or implausible file, or another
    task's, used to be an internal-error line; the twin's own was taken for a robot's, where
    only the reset's workspace check stopped it, and so was one made on this machine, the RTDE
    twin or URSim, for a robot elsewhere; real24), and so was another robot's (a socket pose in
    arm A's base frame drove arm B; real26). The twin takes any calibration made with its TCP:
    a robot's rehearses it."""
    from real.calibration import Calibration

    try:
        calib = Calibration.load(path)
    except (OSError, ValueError) as err:
        raise typer.BadParameter(str(err), param_hint="--calibration") from None
    if calib.task != task:
        raise typer.BadParameter(f"{path} calibrates {calib.task}, not {task}; calibrate this "
                                 "task's socket", param_hint="--calibration")
    if not twin and calib.robot == TWIN_ROBOT_NAME:  # its socket is where the twin's is
        raise typer.BadParameter(f"{path} was recorded on the digital twin, not on a robot; "
                                 "calibrate this cell (`insertbench real calibrate --host "
                                 "...`)", param_hint="--calibration")
    if not twin and host is not None and _loopback(calib.robot) and not _loopback(host):
        raise typer.BadParameter(f"{path} was recorded on this machine ({calib.robot}: the RTDE "
                                 f"twin or URSim), not on the robot at {host}; calibrate this "
                                 "cell", param_hint="--calibration")
    if not twin and host is not None and not _same_host(calib.robot, host):
        raise typer.BadParameter(f"{path} was recorded on the robot at {calib.robot}, not at "
                                 f"{host}: its socket pose is in that robot's base frame; "
                                 "calibrate this robot", param_hint="--calibration")
    return calib


def _same_host(a: str, b: str) -> bool:
    """Whether hosts `a` and `b` are spelled alike (case, spaces, a final dot), or both name
    this machine. A robot's name and its address read as two robots: calibrate again."""
    return _host_name(a) == _host_name(b) or (_loopback(a) and _loopback(b))


def _host_name(host: str) -> str:
    """`host` as DNS compares names: no spaces around it, lower case, no final dot."""
    return host.strip().lower().rstrip(".")


def _loopback(host: str) -> bool:
    """Whether `host` names this machine (localhost, 127.0.0.0/8, ::1)."""
    import ipaddress

    if _host_name(host) == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip()).is_loopback
    except ValueError:  # a host name
        return False


def _check_trained_on(checkpoint: Path, task: str, allow_other_task: bool) -> dict | None:
    """Refuse, as `insertbench eval` does, a checkpoint whose run (run.json) trained on another
    task: on the robot it used to run without a word (a USB policy on a D-sub socket). Returns
    the env kwargs the run trained with (None: no run.json)."""
    from benchmark.train_cli import resolve_checkpoint

    _, run = resolve_checkpoint(checkpoint)
    trained_on = run.get("task_id") if run else None
    if trained_on is not None and trained_on != task and not allow_other_task:
        raise typer.BadParameter(f"{checkpoint} was trained on {trained_on}, not {task}; pass "
                                 "--allow-other-task to run it there anyway")
    return dict(run.get("env_kwargs") or {}) if run else None


@real_app.command("serve-twin")
def serve_twin(
    task: TaskOpt,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Twin episode seed.")] = 0,
    host: Annotated[str, typer.Option(
        help="Address to serve on: 127.0.0.1 or localhost (loopback only).")] = "127.0.0.1",
    max_seconds: Annotated[
        float, typer.Option(help="Stop after this many seconds (it never runs unbounded).")
    ] = 3600.0,
    exit_on_eof: Annotated[bool, typer.Option(help="Stop when stdin closes.")] = False,
    quiet: Annotated[bool, typer.Option(help="No controller log on stderr.")] = False,
) -> None:
    """Serve the digital twin as a UR controller on 127.0.0.1 (RTDE 30004, dashboard 29999,
    script 30002/30003) for ur_rtde clients; operator commands on stdin (estop, unlock, ...)."""
    from real.serve_twin import LOOPBACK, PortInUse, run

    if host not in LOOPBACK:  # where ur_rtde connects: 127.0.0.1, not all of 127/8
        raise typer.BadParameter(f"the rehearsal robot serves on {' or '.join(LOOPBACK)} only, "
                                 f"not {host}")
    if not 0 < max_seconds <= MAX_SERVE_S:  # inf (or 1e308) would serve unbounded
        raise typer.BadParameter(f"--max-seconds must be in (0, {MAX_SERVE_S:g}] (a week), got "
                                 f"{max_seconds}")
    try:
        stopped_by = run(
            task,
            seed=seed,
            host=host,
            max_seconds=max_seconds,
            exit_on_eof=exit_on_eof,
            verbose=not quiet,
        )
    except PortInUse as e:
        typer.echo(f"insertbench: error: {e}; stop the other controller or URSim on this machine",
                   err=True)
        raise typer.Exit(1) from e
    if stopped_by:  # after its "stopped after" line: status 143 or 130, as every command's
        from benchmark.entry import Terminated

        Terminated.received = stopped_by == "terminated"
        raise KeyboardInterrupt


if __name__ == "__main__":  # `python -m benchmark.real_cli ...` = `insertbench real ...`
    import sys

    from benchmark.cli import app as insertbench_app

    insertbench_app(["real", *sys.argv[1:]])
