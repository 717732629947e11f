"""Time to submit and verify one leaderboard entry (target: verify paper000 in < 5 min on 2 cores).

    python -m benchmark.bench_leaderboard [--track paper000] [--checkpoint AGENT_DIR]

Submits an agent checkpoint (default: paper 000's P-controller; ``--checkpoint`` takes any agent
directory made for the track's task variants, used for every task) to a fresh temporary ledger,
which evaluates it on the public dev seeds, then verifies it on hidden seeds from a throwaway
salt. Prints wall-clock and CPU seconds of both evaluations (3 tasks x 50 episodes on paper000),
of verification's PyBullet sim-to-sim block (the same hidden seeds on the tasks PyBullet can
run: USB, D-sub and Model-E on paper000, 150 episodes; none on nist-board) and the end-to-end
wall-clock including loading. On a shared
machine the CPU time is the figure that carries over; wall-clock shows what a maintainer waits.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import torch

import envs
from agents import make_agent
from benchmark.script_args import doc_summary, positive_int
from leaderboards.ledger import Ledger, submit, verify
from leaderboards.submission import SubmissionError, load_submission
from leaderboards.tracks import TRACKS, get_track


def _submission(root: Path, track_name: str, checkpoint: Path | None) -> Path:
    track = get_track(track_name)
    policy = root / "policy"
    if checkpoint is None:
        task = track.tasks[0]
        env = gym.make(task.task_id, **dict(task.env_kwargs))
        make_agent("p_controller", env.observation_space, env.action_space,
                   base_policy=envs.p_controller(env)).save(policy)
    else:
        shutil.copytree(checkpoint, policy, ignore=shutil.ignore_patterns("replay_*"))
    (root / "submission.toml").write_text(
        f'name = "bench"\nauthors = ["bench"]\nmethod = "bench"\ntrack = "{track_name}"\n'
        '[policy]\nkind = "agent"\npath = "policy"\n[training]\nenv_steps = 0\n')
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--track", default="paper000", help="the track whose evaluation is timed")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="an agent directory to submit (default: the P-controller)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    if args.track not in TRACKS:  # was a KeyError traceback
        parser.error(f"unknown track {args.track!r}; tracks: {', '.join(TRACKS)}")
    if args.checkpoint is not None and not (args.checkpoint / "agent.json").is_file():
        parser.error(f"--checkpoint {args.checkpoint} is not an agent directory (no agent.json); "
                     "give e.g. RUN_DIR/checkpoint/agent")
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-leaderboard-"))
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        ledger = Ledger(work / "ledger")
        try:  # a checkpoint of another task's spaces was a traceback (bench20)
            submission = load_submission(_submission(work / "sub", args.track, args.checkpoint))
            _, entry = submit(ledger, submission)
        except SubmissionError as err:
            parser.error(str(err))
        salt = work / "salt"
        salt.write_text(secrets.token_hex(32))
        ledger.open_round(entry["track"], ledger.read_salt(salt))
        entry = verify(ledger, entry["entry_id"], salt).entry
        total, total_cpu = time.perf_counter() - started, time.process_time() - cpu_started
        for name in ("dev", "hidden"):
            block = entry["evaluations"][name]
            n = len(block["episodes"])
            wins = sum(e["success"] for e in block["episodes"])
            print(f"{args.track} {name:6s}: {n} episodes ({wins} successes) in "
                  f"{block['wall_clock_s']:.1f} s wall, {block['cpu_s']:.1f} s CPU")
        sim = entry["sim2sim"]
        n, wins = len(sim["episodes"]), sum(e["success"] for e in sim["episodes"])
        run = [label for label, t in sim["tasks"].items() if t["supported"]]
        if run:
            print(f"{args.track} sim2sim: {n} PyBullet episodes on {', '.join(run)} ({wins} "
                  f"successes) in {sim['wall_clock_s']:.1f} s wall, {sim['cpu_s']:.1f} s CPU")
        else:  # it printed "0 PyBullet episodes on  (0 successes)"
            print(f"{args.track} sim2sim: no task of the track runs in PyBullet")
        # The process's own CPU: the ONNX child's, if any, is not in it (the README's figure).
        print(f"submit + verify end to end: {total:.1f} s wall, {total_cpu:.1f} s CPU "
              "(this process)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    from envs.tasks import pinned_versions

    with pinned_versions():  # a track's task versions are its own: no "upgrade to v3" advice
        main()
