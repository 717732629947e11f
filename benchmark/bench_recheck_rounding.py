"""How far rounding alone moves a ledger entry's episodes: the noise a recheck on another host
must tolerate.

    python -m benchmark.bench_recheck_rounding ENTRY [ENTRY ...] [--ledger DIR]

Runs each entry's policy on its track's public dev seeds twice: as stored, and with every
action multiplied by 1 +- 1.2e-7 (one float32 rounding, random sign per component), the size of
difference another CPU or BLAS build makes. Prints, per entry, how many of the episodes keep
their outcome, how many moved some other field by more than 1e-3 relative (or a count), and the
fields of the episode records whose mean over the episodes moved most (every measured field,
not only the site's columns; a field some of whose outcomes changed is left out, its count of
values changing with them). `leaderboards.recheck`
passes a recheck elsewhere on the outcomes alone because of what this measures.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the tasks)
from benchmark.script_args import doc_summary
from envs.episode import run_episode
from envs.tasks import pinned_versions
from leaderboards.ledger import Ledger, LedgerError, stored_policy_paths
from leaderboards.policy import load_policy
from leaderboards.recheck import compare_episodes, relative_difference
from leaderboards.tracks import get_track

SHIPPED_LEDGER = Path(__file__).resolve().parents[1] / "leaderboards" / "ledger"
#: One float32 rounding, relative.
ROUNDING = 1.2e-7
#: A field that moved more than this relative moved far.
FAR_REL = 1e-3


class RoundedPolicy:
    """``policy`` with each action component multiplied by 1 +- `ROUNDING` (seeded)."""

    def __init__(self, policy: Any, seed: int) -> None:
        self.policy, self.rng = policy, np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if hasattr(self.policy, "reset"):
            self.policy.reset(seed=seed)

    def __call__(self, obs: Any) -> np.ndarray:
        action = np.asarray(self.policy(obs), dtype=np.float32)
        sign = self.rng.choice([-1.0, 1.0], action.shape)
        return (action * (1.0 + ROUNDING * sign)).astype(np.float32)


def dev_episodes(entry: dict[str, Any], paths: dict[str, Path], rounded: bool
                 ) -> list[dict[str, Any]]:
    """The entry's episodes on its track's dev seeds (its policy files at `paths`,
    `stored_policy_paths`), its actions rounded or not."""
    track = get_track(entry["track"])
    episodes = []
    for task in track.tasks:
        with pinned_versions():  # a track pins its task versions
            env = gym.make(task.task_id, **dict(task.env_kwargs))
        try:
            policy = load_policy(entry["policy"]["kind"], paths[task.label], env)
            if rounded:
                policy = RoundedPolicy(policy, seed=0)
            for seed in track.dev_seeds():
                episodes.append({"task": task.label, **run_episode(env, policy, seed).to_dict()})
        finally:
            env.close()
    return episodes


def mean_moves(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, float]:
    """Relative move of each numeric field's mean over the episodes, largest first."""
    moves = {}
    for key in a[0]:
        x = [e[key] for e in a if _number(e.get(key))]
        y = [e[key] for e in b if _number(e.get(key))]
        if x and len(x) == len(y):
            mx, my = float(np.mean(x)), float(np.mean(y))
            moves[key] = abs(mx - my) / max(abs(mx), abs(my), 1e-12)
    return dict(sorted(moves.items(), key=lambda kv: -kv[1]))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("entries", nargs="+", help="entry IDs or unique prefixes")
    parser.add_argument("--ledger", type=Path, default=SHIPPED_LEDGER,
                        help="default: the ledger in this checkout")
    args = parser.parse_args()
    ledger = Ledger(args.ledger)
    try:  # every entry's policy files first: one missing or altered was a traceback (bench23)
        entries = [(entry, stored_policy_paths(ledger, entry))
                   for entry in (ledger.find(ref) for ref in args.entries)]
    except LedgerError as err:
        parser.error(str(err))
    for entry, paths in entries:
        stored = dev_episodes(entry, paths, rounded=False)
        rounded = dev_episodes(entry, paths, rounded=True)
        c = compare_episodes(stored, rounded)
        far = sum(
            any(relative_difference(old.get(k), new.get(k)) > FAR_REL for k in {*old, *new})
            for old, new in zip(stored, rounded, strict=True))
        means = ", ".join(f"{k} {v:.1%}" for k, v in list(mean_moves(stored, rounded).items())[:3])
        print(f"{entry['entry_id'][:12]} {entry['name']}: {c.episodes} episodes, "
              f"{len(c.outcome_changes)} outcomes changed, {far} moved by more than "
              f"{FAR_REL:g} relative or a count; means moved most: {means}", flush=True)


if __name__ == "__main__":
    main()
