"""Compare an entry's recomputed episodes with the ledger's record of them.

A recheck replays the same policy on the same seeds, but rarely on the same machine: another
CPU, BLAS or Mesa build rounds floats differently, and contact dynamics amplify the difference
over an episode. Measured on recomputing ledger entries on another host: a P-controller's
numbers moved by up to 2e-6 relative (median episode 5e-13), scripted straight-down's peak
force by up to 2e-4, a CNN policy from pixels took a step more in one episode and ended 0.05 mm
elsewhere in another, and a borderline episode can change its outcome (3 of 180 episodes of
one entry). No tolerance on the numbers separates rounding from an edited record, so a recheck
passes on the outcomes, which rank an entry, and reports how far the numbers moved:

- identical: every record is bitwise the ledger's;
- same outcomes: every episode's outcome is the ledger's; the largest difference of any other
  field is reported (``exact`` in `leaderboards.ledger.verify` refuses this);
- outcomes changed: some episode's outcome differs: the recheck fails, naming the episodes
  and each task's successes in the ledger and recomputed.

Every evaluation block records the platform it ran on (`platform_fingerprint`), so a recheck
can say whether it ran where the entry was evaluated, where ``exact`` is the fair test.

Outcomes are what ranks an entry: `success`, and `failure` / `safety_trip` (a failed episode is
never a success), with the identity of the episode (task, task ID, version key, seed).
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

#: Smallest magnitude a relative difference is taken against.
_ABS_FLOOR = 1e-12
OUTCOME_FIELDS = ("task", "task_id", "task_version_key", "seed", "success", "failure",
                  "safety_trip")


@dataclass(frozen=True)
class EpisodeComparison:
    """Recomputed episodes against the ledger's.

    Attributes:
        episodes: how many were compared.
        identical: how many are bitwise the ledger's.
        outcome_changes: one line per episode whose outcome differs ("USB seed 7: success
            True -> False").
        differing: how many have the ledger's outcome but differ in some other field.
        largest: the largest difference found: "field old -> new" with its relative size, or
            None when every record is identical.
        largest_rel: that relative difference (0.0 when identical; inf for a changed integer
            or a missing value).
        successes: per task whose count changed, (ledger's, recomputed) successes.
    """

    episodes: int
    identical: int
    outcome_changes: tuple[str, ...]
    differing: int
    largest: str | None
    largest_rel: float
    successes: dict[str, tuple[int, int]]

    @property
    def identical_all(self) -> bool:
        return self.identical == self.episodes


def relative_difference(old: Any, new: Any) -> float:
    """How far `new` is from `old`: a relative difference for two floats, inf for any other
    change (an integer, a None appearing or vanishing), 0.0 for equal values."""
    if old == new:
        return 0.0
    if isinstance(old, float) and isinstance(new, float):
        return abs(new - old) / max(abs(old), abs(new), _ABS_FLOOR)
    return float("inf")


def compare_episodes(recorded: Sequence[Mapping[str, Any]],
                     recomputed: Sequence[Mapping[str, Any]]) -> EpisodeComparison:
    """Compare recomputed episode records with the recorded ones, pairwise in order.

    Raises ValueError when the two lists differ in length (a different set of episodes is no
    recheck of this entry).
    """
    if len(recorded) != len(recomputed):
        raise ValueError(f"{len(recomputed)} episodes recomputed for the ledger's "
                         f"{len(recorded)}")
    identical, differing, changes = 0, 0, []
    largest, largest_rel = None, 0.0
    successes: dict[str, list[int]] = {}
    for old, new in zip(recorded, recomputed, strict=True):
        task = str(old.get("task", old.get("task_id")))
        count = successes.setdefault(task, [0, 0])
        count[0] += bool(old.get("success"))
        count[1] += bool(new.get("success"))
        if old == new:
            identical += 1
            continue
        name = f"{task} seed {old.get('seed')}"
        changed = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in OUTCOME_FIELDS
                   if old.get(k) != new.get(k)]
        if changed:
            changes.append(f"{name}: {', '.join(changed)}")
            continue
        differing += 1
        for key in sorted(set(old) | set(new)):
            rel = relative_difference(old.get(key), new.get(key))
            if rel > largest_rel:
                largest_rel = rel
                largest = f"{name}: {key} {old.get(key)!r} -> {new.get(key)!r}"
    moved = {task: (a, b) for task, (a, b) in successes.items() if a != b}
    return EpisodeComparison(len(recorded), identical, tuple(changes), differing, largest,
                             largest_rel, moved)


def describe(comparison: EpisodeComparison, what: str) -> str:
    """One line on `comparison` of `what` ("hidden episodes of 5d30439628cb")."""
    c = comparison
    if c.outcome_changes:
        shown = "; ".join(c.outcome_changes[:3]) + ("; ..." if len(c.outcome_changes) > 3 else "")
        counts = ", ".join(f"{task} {a} -> {b}" for task, (a, b) in c.successes.items())
        return (f"{len(c.outcome_changes)} of {c.episodes} recomputed {what} have another "
                f"outcome than the ledger's ({shown})"
                + (f"; successes {counts}" if counts else ""))
    if c.episodes == 0:
        return f"no {what} to recompute"
    if c.identical_all:
        return f"every one of the {c.episodes} recomputed {what} is identical to the ledger's"
    size = "a changed count" if c.largest_rel == float("inf") else f"{c.largest_rel:.1e} relative"
    return (f"the {c.episodes} recomputed {what} have the ledger's outcomes; {c.differing} "
            f"differ in another field (largest: {c.largest}, {size})")


def _cpu() -> str:
    """The CPU's model and a short hash of its feature flags (two hosts that report the same
    generic model name may still differ in AVX-512, which changes rounding)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    field = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[:40])}
    flags = hashlib.sha256(field.get("flags", "").encode()).hexdigest()[:8]
    return f"{field.get('model name', platform.machine())} (flags {flags})"


def platform_fingerprint() -> dict[str, str]:
    """What an evaluation's floats depend on besides the code: CPU, Python and the numerical
    packages' versions, and torch's thread count. Torch is imported for it: counted only where
    a command had loaded torch, an ONNX entry's hidden block (`verify` loads no torch) and its
    dev block (`submit` does) read as two platforms, and `verify --dev` on the machine that
    made both waived the bitwise rule, accepting an edited episode."""
    import torch

    versions = {}
    for package in ("numpy", "mujoco", "torch", "onnxruntime"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    found = {"machine": platform.machine(), "cpu": _cpu(), "python": platform.python_version(),
             **versions}
    return found | {"torch_threads": str(torch.get_num_threads())}
