"""``insertbench classifier train``: a success classifier for learned-reward runs (SERL/HIL-SERL).

    insertbench classifier train --task InsertBench/USB-v0 --out classifiers/usb \\
        -e goal_noise_mm=1 -e "init_offset_mm=[0,10]" --episodes 60 --heldout-episodes 20

Frames come from noisy hand-controller rollouts labelled by the simulator's success
(``benchmark.learned_reward.collect_frames``); the last ``--heldout-episodes`` episodes are never
trained on and give the false-positive / false-negative rates printed and written to
``<out>/report.json``. Use the result with
``insertbench train ... -e reward=classifier -e reward_classifier=<out>``.
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from benchmark.cells import MAX_EVAL_EPISODES, MAX_TRAIN_STEPS
from benchmark.cli_options import (
    EnvOption,
    TorchThreadsOpt,
    check_output_dir,
    parse_env_kwargs,
    set_torch_threads,
)
from envs.json_files import write_json

#: Held by a training run for as long as it writes its --out folder.
CLASSIFIER_LOCK = "classifier.lock"

app = typer.Typer(help="Learned success classifiers (rewards for SERL / HIL-SERL runs).",
                  no_args_is_help=True)


@app.command("train")
def train_command(
    task: Annotated[str, typer.Option(help="Gymnasium task ID, e.g. InsertBench/USB-v0.")],
    out: Annotated[Path, typer.Option(help="Output directory of the classifier.")],
    env: EnvOption = None,
    episodes: Annotated[int, typer.Option(help="Training rollouts.")] = 60,
    heldout_episodes: Annotated[int, typer.Option(help="Held-out rollouts (error rates).")] = 20,
    image_size: Annotated[int, typer.Option(help="Camera image size [pixels].")] = 64,
    proprio: Annotated[bool, typer.Option(help="Also feed tcp_pose to the classifier.")] = False,
    sanity_margin_mm: Annotated[
        float | None,
        typer.Option(help="Sanity check: success needs tcp z >= (lowest successful z in the "
                          "training frames) - margin; omit to disable."),
    ] = None,
    threshold: Annotated[float, typer.Option(help="Decision threshold on P(success).")] = 0.5,
    steps: Annotated[int, typer.Option(help="Gradient steps.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    torch_threads: TorchThreadsOpt = None,
    progress: Annotated[bool | None, typer.Option(
        "--progress/--no-progress",
        help="Progress bars of the rollouts and the training [default: where stderr is a "
             "terminal].", show_default=False)] = None,
) -> None:
    """Collect labelled frames, train the classifier, report held-out error rates (its
    weights, and so its rates, depend on the seed and on torch's thread count, recorded)."""
    import numpy as np
    import torch

    from agents.networks import is_image_space
    from agents.reward_classifier import (
        ClassifierMeta,
        SuccessClassifier,
        error_rates,
        save_classifier,
        train_classifier,
    )
    from benchmark.learned_reward import (
        RENDER_KWARGS,
        check_one_part,
        collect_frames,
        frame_settings,
    )
    from benchmark.train import make_env

    if not (1 <= episodes <= MAX_EVAL_EPISODES and 1 <= heldout_episodes <= MAX_EVAL_EPISODES):
        raise typer.BadParameter(  # 10^9 ran on
            f"--episodes and --heldout-episodes must be in [1, {MAX_EVAL_EPISODES}]")
    if not 0.0 < threshold < 1.0:
        raise typer.BadParameter(f"--threshold must be in (0, 1), got {threshold}")
    # Checked before the rollouts (minutes): a NaN margin made every frame fail the sanity
    # check, and an --out that is a file failed only when saving.
    # 1e308 overflowed to a threshold of -1e305 m, which turned the check off without a word.
    if sanity_margin_mm is not None and not 0 <= sanity_margin_mm <= 100:
        raise typer.BadParameter(f"--sanity-margin-mm must be a finite number in [0, 100] "
                                 f"[mm], got {sanity_margin_mm}")
    if not 1 <= steps <= MAX_TRAIN_STEPS:  # 10^20 overflowed after the rollouts
        raise typer.BadParameter(f"--steps must be in [1, {MAX_TRAIN_STEPS:,}], got {steps}")
    from agents.registry import check_seed

    try:  # NumPy refused a negative one only after every rollout, torch 2**64 and above
        check_seed(seed)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--seed") from None
    check_output_dir(out, "--out", own="classifier.json", what="classifier",
                     ignore=(CLASSIFIER_LOCK,))
    set_torch_threads(torch_threads)
    env_kwargs = parse_env_kwargs(env)
    # The thread count too: one seed on 1 and 2 threads gave other weights and rates (data17).
    settings = {"task_id": task, "env": sorted(env or []), "episodes": episodes,
                "heldout_episodes": heldout_episodes, "image_size": image_size,
                "proprio": proprio, "sanity_margin_mm": sanity_margin_mm,
                "threshold": threshold, "steps": steps, "seed": seed,
                "torch_threads": torch.get_num_threads()}
    # Typer's own Click: click's class was taken for an internal error (data17).
    from typer._click.exceptions import ClickException

    from benchmark.folder_lock import RunInProgress, run_lock

    with ExitStack() as held:
        try:  # a second run into the folder replaced the first's classifier without a word
            held.enter_context(run_lock(out, CLASSIFIER_LOCK, "classifier training"))
        except RunInProgress as err:  # not a bad value: no "Invalid value", no "see --help"
            raise ClickException(str(err)) from None
        _check_same_settings(out, settings)
        if "image_size" in env_kwargs:  # --image-size's default used to replace it silently
            raise typer.BadParameter("give the image size as --image-size, not -e image_size=...")
        env_kwargs["image_size"] = image_size
        for key in ("reward", "obs_mode", "reward_classifier"):
            if key in env_kwargs:
                raise typer.BadParameter(f"-e {key}=... is set by the classifier, leave it out")
        torch.manual_seed(seed)
        try:
            probe = make_env(task, env_kwargs | {"obs_mode": "state+pixels"})
            space = probe.observation_space
            try:  # no run could use it (it trained, then every run refused the task)
                check_one_part(probe, task)
            finally:
                probe.close()
            keys = [k for k, s in space.spaces.items() if is_image_space(s)]
            keys += ["tcp_pose"] if proprio else []
            # Its networks before the rollouts: --image-size 8 was "too small for the 'drq'
            # image encoder" after them.
            SuccessClassifier(space, ClassifierMeta(keys=tuple(keys), threshold=threshold))
            # Three bars went into a log too (newuser25): where stderr is a terminal, as train's.
            bars = sys.stderr.isatty() if progress is None else progress
            train_frames = collect_frames(task, env_kwargs, episodes,
                                          progress="training frames" if bars else None)
            heldout = collect_frames(task, env_kwargs, heldout_episodes, first_episode=episodes,
                                     progress="held-out frames" if bars else None)
        except (ValueError, gym_error()) as err:
            raise typer.BadParameter(str(err)) from err
        min_z = None
        if sanity_margin_mm is not None:
            z = train_frames["obs"]["tcp_pose"][train_frames["label"], 2]
            if len(z) == 0:
                raise typer.BadParameter("no successful training frame to set the sanity "
                                         "check from")
            min_z = float(z.min()) - sanity_margin_mm / 1000.0
        meta = ClassifierMeta(
            keys=tuple(keys), threshold=threshold, min_insertion_z_m=min_z,
            env_kwargs={k: v for k, v in env_kwargs.items() if k in RENDER_KWARGS}
            | (frame_settings(env_kwargs) if proprio or min_z is not None else {}),
        )
        classifier = SuccessClassifier(space, meta)
        try:
            fit = train_classifier(classifier, train_frames, steps=steps, seed=seed,
                                   progress=bars)
        except ValueError as err:
            raise typer.BadParameter(str(err)) from err
        classifier.eval()
        report = {
            "settings": settings,
            "task_id": task, "env_kwargs": env_kwargs, "train_episodes": episodes,
            "train_frames": int(len(train_frames["label"])),
            "train_positive_frames": int(np.sum(train_frames["label"])),
            "fit": fit, "heldout": error_rates(classifier, heldout),
            "train": error_rates(classifier, train_frames),
        }
        save_classifier(classifier, out)
        write_json(out / "report.json", report, non_finite="null")  # NaN rates: null
        h = report["heldout"]
        typer.echo(f"classifier -> {out}; held-out {int(h['frames'])} frames "
                   f"({int(h['positives'])} successes): false-positive rate "
                   f"{h['false_positive_rate']:.3f}, false-negative rate "
                   f"{h['false_negative_rate']:.3f}")


def gym_error() -> type[Exception]:
    """gymnasium's base error (unknown task IDs), imported lazily."""
    import gymnasium

    return gymnasium.error.Error


def register(root: typer.Typer) -> None:
    """Mount ``classifier`` on the ``insertbench`` app."""
    root.add_typer(app, name="classifier")


def _check_same_settings(out: Path, settings: dict) -> None:
    """A classifier's own folder is trained again only with the settings it was trained with
    (`report.json`): another --image-size replaced the classifier there without a word."""
    report = out / "report.json"
    try:
        recorded = json.loads(report.read_text()).get("settings")
    except (OSError, ValueError, AttributeError):
        return  # no report (or an unreadable one): nothing recorded to keep
    if recorded is not None and recorded != settings:
        changed = ", ".join(f"{k} {recorded.get(k)!r} -> {v!r}" for k, v in settings.items()
                            if recorded.get(k) != v)
        raise typer.BadParameter(f"{out} holds a classifier trained with other settings "
                                 f"({changed}); give another --out", param_hint="--out")


if __name__ == "__main__":  # `python -m benchmark.classifier_cli` = `insertbench classifier`
    import sys

    from benchmark.cli import app as insertbench_app

    insertbench_app(["classifier", *sys.argv[1:]])
