"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.metrics import (
    CurvePoint,
    aggregate,
    cell_metrics,
    format_distinct_rate,
    format_rate,
    performance_profile,
    score_matrices,
    time_to_threshold,
)
from envs.episode import (
    EpisodeRecord,
    distinct_episodes,
    distinct_success_summary,
    replay_interval,
    summarize,
    wilson_interval,
)

Z95 = 1.959963984540054


def hand_wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson score interval written out from its textbook formula."""
    p = k / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return centre - half, centre + half


def test_wilson_interval_matches_hand_computation() -> None:
    # 16/20: p = 0.8, z^2/n = 0.19207, centre 0.75167, half-width 0.16768.
    low, high = wilson_interval(16, 20)
    assert low == pytest.approx(0.58398, abs=1e-5)
    assert high == pytest.approx(0.91934, abs=1e-5)
    for k, n in [(0, 20), (20, 20), (7, 25), (1, 3)]:
        assert wilson_interval(k, n) == pytest.approx(hand_wilson(k, n), abs=1e-12)
    # 0/20: the lower end is 0 and the upper end is (z^2/n) / (1 + z^2/n) = 0.16113.
    assert wilson_interval(0, 20)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(0, 20)[1] == pytest.approx(0.16113, abs=1e-5)
    # Exactly 0 and 1 at the ends (rounding gave 2.8e-17 for 0/7, a "low" above its rate).
    for n in range(1, 201):
        assert wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0


def test_wilson_interval_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="trials"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 4)


def test_time_to_threshold_first_evaluation_reaching_it() -> None:
    curve = [
        CurvePoint(0, 0.0, 2, 20),
        CurvePoint(1000, 10.0, 15, 20),
        CurvePoint(2000, 21.5, 16, 20),  # exactly 80%
        CurvePoint(3000, 30.0, 14, 20),
        CurvePoint(4000, 42.0, 19, 20),  # exactly 95%
    ]
    assert time_to_threshold(curve, 0.8) == (2000, 21.5)
    assert time_to_threshold(curve, 0.95) == (4000, 42.0)
    assert time_to_threshold(curve[:4], 0.95) is None
    assert time_to_threshold([], 0.8) is None


def _episode(success: bool, steps: int | None, distance: float, force: float) -> dict:
    return {"success": success, "steps_to_success": steps,
            "time_to_success_s": None if steps is None else steps / 10,
            "final_distance_mm": distance, "peak_force_n": force}


def test_cell_metrics_from_records() -> None:
    final = [_episode(True, 10, 0.0, 5.0), _episode(True, 30, 0.5, 7.0),
             _episode(False, None, 8.0, 20.0), _episode(True, 20, 0.1, 6.0)]
    evaluations = [
        {"is_final": False, "env_steps": 0, "wall_clock_s": 0.0,
         "episodes": [_episode(False, None, 9.0, 3.0)] * 4},
        {"is_final": False, "env_steps": 500, "wall_clock_s": 12.0, "episodes": final},
        {"is_final": True, "env_steps": 500, "wall_clock_s": 12.0, "episodes": final},
    ]
    m = cell_metrics(evaluations)
    assert (m.successes, m.trials) == (3, 4)
    assert (m.ci_low, m.ci_high) == pytest.approx(hand_wilson(3, 4))
    assert m.mean_steps_to_success == pytest.approx(20.0)  # (10 + 30 + 20) / 3, successes only
    assert m.mean_seconds_to_success == pytest.approx(2.0)
    assert m.mean_final_distance_mm == pytest.approx(8.6 / 4)
    assert m.mean_peak_force_n == pytest.approx(38.0 / 4)
    assert m.max_peak_force_n == 20.0
    assert [p.success_rate for p in m.curve] == [0.0, 0.75]
    assert m.reach[0.8] is None  # 75% never reaches 80%


def test_iqm_and_mean_match_hand_computation() -> None:
    # Eight scores; IQM drops the lowest and highest quarter (two each): mean of .2 .3 .4 .5.
    scores = np.array([[0.0, 0.6, 0.2, 0.4], [1.0, 0.1, 0.5, 0.3]])
    result = aggregate({"m": scores}, reps=300)["m"]
    assert result.iqm == pytest.approx(0.35)
    assert result.mean == pytest.approx(3.1 / 8)
    assert result.iqm_ci[0] <= result.iqm <= result.iqm_ci[1]
    assert result.mean_ci[0] <= result.mean <= result.mean_ci[1]
    assert (result.runs, result.tasks) == (2, 4)
    # A constant score has a degenerate interval; the bootstrap is reproducible.
    flat = aggregate({"c": np.full((3, 2), 0.5)}, reps=100)["c"]
    assert flat.iqm_ci == pytest.approx((0.5, 0.5))
    assert aggregate({"m": scores}, reps=300)["m"] == result


def test_a_methods_intervals_do_not_depend_on_the_other_methods() -> None:
    """A report with one more method, one fewer or another order: every other method's
    bootstrap intervals are exactly as before (each is seeded by its own name)."""
    rng = np.random.default_rng(0)
    matrices = {name: rng.random((5, 3)) for name in ("sac", "td3", "bc")}
    fewer = {"bc": matrices["bc"], "sac": matrices["sac"]}
    every, some = aggregate(matrices, reps=200), aggregate(fewer, reps=200)
    assert some == {name: every[name] for name in fewer}
    assert every["sac"].mean_ci != every["bc"].mean_ci
    _, _, every_ci = performance_profile(matrices, reps=50)
    _, _, some_ci = performance_profile(fewer, reps=50)
    for name in fewer:
        np.testing.assert_array_equal(every_ci[name], some_ci[name])


def test_score_matrices_leave_out_incomplete_methods() -> None:
    scores = [("a", "t1", 0, 0.1), ("a", "t2", 0, 0.2), ("a", "t1", 1, 0.3), ("a", "t2", 1, 0.4),
              ("b", "t1", 0, 1.0), ("b", "t2", 0, 1.0), ("b", "t1", 1, 1.0)]
    matrices, skipped = score_matrices(scores)
    np.testing.assert_array_equal(matrices["a"], [[0.1, 0.2], [0.3, 0.4]])
    assert "b" not in matrices and "3 of 4" in skipped["b"]


def test_a_method_without_a_score_on_one_of_its_tasks_is_left_out() -> None:
    """Its every cell on t3 failed: a complete matrix over t1 and t2 compared it with methods
    scored on all three, and ranked it above a method better on every task both ran."""
    scores = [(m, t, s, 0.5) for m in ("a", "b") for t in ("t1", "t2") for s in (0, 1)]
    scores += [("a", "t3", s, 0.1) for s in (0, 1)]
    matrices, skipped = score_matrices(scores, {"a": {"t1", "t2", "t3"},
                                                "b": {"t1", "t2", "t3"}})
    assert matrices["a"].shape == (2, 3)
    assert "b" not in matrices and skipped["b"] == "no finished cell on t3"


def test_a_method_with_a_seed_failed_on_every_task_is_left_out() -> None:
    """One failed cell left the method out with a note, a seed failed on every task dropped out
    without one: the method was aggregated over its surviving seeds beside complete ones."""
    scores = [(m, t, s, 0.5) for m in ("a", "b") for t in ("t1", "t2") for s in (0, 1)]
    scores += [("a", t, 2, 0.1) for t in ("t1", "t2")]
    matrices, skipped = score_matrices(scores, seeds_of={"a": {0, 1, 2}, "b": {0, 1, 2}})
    assert matrices["a"].shape == (3, 2)
    assert "b" not in matrices and skipped["b"] == "no finished cell of seed(s) 2"


def test_performance_profile_is_fraction_of_runs_above_tau() -> None:
    scores = {"m": np.array([[0.0, 0.5], [1.0, 0.25]])}
    taus, profiles, _ = performance_profile(scores, taus=np.array([0.0, 0.3, 0.9]), reps=50)
    np.testing.assert_allclose(profiles["m"], [0.75, 0.5, 0.25])
    assert taus.shape == (3,)


def test_replayed_episodes_count_once() -> None:
    """Ten seeds replaying one episode are one trial: the interval is over distinct episodes."""
    replay = [dict(_episode(False, None, 8.0, 20.0), eval_seed=s) for s in range(10)]
    assert len(distinct_episodes(replay)) == 1
    assert distinct_success_summary(replay) == (0, 1)
    m = cell_metrics([{"is_final": True, "env_steps": 0, "wall_clock_s": 0.0,
                       "episodes": replay}])
    assert (m.successes, m.trials, m.distinct_trials) == (0, 10, 1)
    assert (m.ci_low, m.ci_high) == pytest.approx(hand_wilson(0, 1))
    assert format_distinct_rate(0, 10, 1).endswith("; 1 distinct)")
    # Episodes that differ in any outcome field are distinct, whatever their seeds.
    varied = replay[:2] + [dict(replay[0], peak_force_n=20.5)]
    assert len(distinct_episodes(varied)) == 2
    assert format_distinct_rate(3, 4, 4) == format_rate(3, 4, *wilson_interval(3, 4))


def _record(seed: int, success: bool, force: float) -> EpisodeRecord:
    return EpisodeRecord("InsertBench/USB-v1", "key", seed, success, 20, 5 if success else None,
                         0.5 if success else None, 1.0, force, 0.0, 0.1, 0.05)


def test_summarize_reports_effective_trials() -> None:
    same = [_record(s, True, 3.0) for s in range(4)]
    summary = summarize(same + [_record(9, False, 9.0)])
    assert summary["episodes"] == 5 and summary["effective_trials"] == 2
    # The rate of all 5 (4/5) weighed as 2 trials: 1.6 of 2. The distinct episodes alone (1 of
    # 2: [0.09, 0.91]) had printed "80%" beside an interval that missed it.
    assert (summary["success_ci95_low"], summary["success_ci95_high"]) == pytest.approx(
        hand_wilson(1.6, 2))
    assert summary["success_ci95_low"] < 0.8 < summary["success_ci95_high"]


def test_replay_interval_is_the_distinct_interval_at_none_and_all_replaying() -> None:
    assert replay_interval(7, 9, 9) == pytest.approx(wilson_interval(7, 9))
    assert replay_interval(10, 10, 1) == pytest.approx(wilson_interval(1, 1))
    assert replay_interval(0, 10, 1) == pytest.approx(wilson_interval(0, 1))
    for k, n, d in [(49, 50, 2), (19, 20, 2), (1, 50, 3), (30, 40, 7)]:
        low, high = replay_interval(k, n, d)
        assert low <= k / n <= high
    for k in range(0, 31):  # integer successes: the textbook formula
        assert wilson_interval(k, 30) == pytest.approx(hand_wilson(k, 30), abs=1e-12)
    with pytest.raises(ValueError, match="distinct episodes must be in"):
        replay_interval(3, 4, 5)


def test_the_engines_are_compared_seed_by_seed_over_distinct_pairs() -> None:
    """Two intervals that overlap hid a difference the same seeds show at p = 0.001 (38/50
    against 27/50: 11 seeds MuJoCo only, 0 PyBullet only, engines18). Replayed pairs count
    once."""
    from benchmark.sim2sim import paired_difference

    mujoco = [_record(s, s < 38, float(s)) for s in range(50)]
    bullet = [_record(s, s < 27, float(s)) for s in range(50)]
    paired = paired_difference({"mujoco": mujoco, "pybullet": bullet})
    assert (paired["pairs"], paired["mujoco_only"], paired["pybullet_only"]) == (50, 11, 0)
    assert paired["p_value"] == pytest.approx(2 * 0.5 ** 11)
    replays = {"mujoco": [_record(s, True, 3.0) for s in range(5)],
               "pybullet": [_record(s, False, 4.0) for s in range(5)]}
    assert paired_difference(replays) | {"p_value": 0} == {
        "pairs": 1, "mujoco_only": 1, "pybullet_only": 0, "p_value": 0}
    with pytest.raises(ValueError, match="not on the same seeds"):
        paired_difference({"mujoco": mujoco[:2], "pybullet": bullet[1:3]})
