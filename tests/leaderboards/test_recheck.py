"""Rechecks: recomputed episodes against the ledger's (`leaderboards.recheck`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from leaderboards.recheck import compare_episodes, describe

REPO_ROOT = Path(__file__).resolve().parents[2]


def _episode(seed: int, success: bool = True, **fields) -> dict:
    return {"task": "USB", "task_id": "InsertBench/USB-v1", "task_version_key": "k",
            "seed": seed, "success": success, "steps": 12, "peak_force_n": 20.0,
            "failure": None, "safety_trip": None} | fields


def test_identical_episodes():
    ledger = [_episode(1), _episode(2, success=False)]
    c = compare_episodes(ledger, [dict(e) for e in ledger])
    assert c.identical_all and not c.outcome_changes and c.largest is None
    assert "every one of the 2" in describe(c, "episodes")
    assert describe(compare_episodes([], []), "PyBullet episodes") == \
        "no PyBullet episodes to recompute"


def test_same_outcomes_report_the_largest_difference():
    ledger = [_episode(1), _episode(2), _episode(3)]
    recomputed = [_episode(1, peak_force_n=20.0 * (1 + 1e-12)), _episode(2, peak_force_n=21.0),
                  _episode(3)]
    c = compare_episodes(ledger, recomputed)
    assert (c.identical, c.differing, c.outcome_changes) == (1, 2, ())
    assert c.largest == "USB seed 2: peak_force_n 20.0 -> 21.0"
    assert c.largest_rel == pytest.approx(1 / 21)
    assert not c.successes
    # A changed count (a step more) ranks above any relative difference.
    c = compare_episodes(ledger, [_episode(1), _episode(2, peak_force_n=21.0),
                                  _episode(3, steps=13)])
    assert c.largest == "USB seed 3: steps 12 -> 13" and c.largest_rel == float("inf")
    assert "a changed count" in describe(c, "episodes")


def test_changed_outcomes_are_named_with_the_success_counts():
    ledger = [_episode(1), _episode(2, success=False), _episode(3)]
    recomputed = [_episode(1), _episode(2, success=True),
                  _episode(3, success=False, failure="physics")]
    c = compare_episodes(ledger, recomputed)
    assert c.outcome_changes == ("USB seed 2: success False -> True",
                                 "USB seed 3: success True -> False, failure None -> 'physics'")
    assert c.successes == {}  # 2 of 3 either way: the counts did not move
    c = compare_episodes(ledger[:2], recomputed[:2])
    assert c.successes == {"USB": (1, 2)}
    line = describe(c, "hidden episodes of abc")
    assert line.startswith("1 of 2 recomputed hidden episodes of abc have another outcome")
    assert line.endswith("successes USB 1 -> 2")
    # Another episode in the same place (another seed) is another outcome, not a difference.
    assert compare_episodes([_episode(1)], [_episode(9)]).outcome_changes


def test_a_different_number_of_episodes_is_refused():
    with pytest.raises(ValueError, match="1 episodes recomputed for the ledger's 2"):
        compare_episodes([_episode(1), _episode(2)], [_episode(1)])


def test_the_platform_fingerprint_does_not_depend_on_what_was_imported_before():
    """torch's thread count was recorded only where a command had loaded torch: `submit` of an
    ONNX policy did, `verify` did not, so `verify --dev` on the machine that made an entry
    called it another platform and accepted an edited episode that `audit` failed."""
    code = ("import json, sys; from leaderboards.recheck import platform_fingerprint; "
            "fresh = 'torch' not in sys.modules; "
            "print(json.dumps([fresh, platform_fingerprint()]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    fresh, fingerprint = json.loads(done.stdout)
    assert fresh  # the fingerprint was taken without torch loaded
    assert int(fingerprint["torch_threads"]) >= 1
