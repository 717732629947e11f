"""Reports of a preset's matrix: Markdown plus one self-contained HTML file.

Every number is recomputed from the raw episode records in the store. Sections: status and
provenance; final success per task variant and method (pooled over seeds, 95% Wilson interval);
the paper's numbers beside ours where the preset has a ``[paper_reference]``; cycle time, final
distance and contact force; steps and wall-clock to 80% / 95% success; IQM and mean across tasks
and seeds with stratified bootstrap CIs (rliable); learning curves and a performance profile.
The HTML embeds its figures as base64 PNG, so it is one file that opens anywhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

from benchmark.cells import Cell, canonical_json  # noqa: E402
from benchmark.metrics import (  # noqa: E402
    THRESHOLDS,
    CellMetrics,
    CurvePoint,
    aggregate,
    cell_metrics,
    format_distinct_rate,
    format_rate,
    percent,
    performance_profile,
    pooled_distinct_summary,
    replayed_seeds,
    score_matrices,
)
from benchmark.preset import Preset  # noqa: E402
from benchmark.store import Store  # noqa: E402
from envs.episode import wilson_interval  # noqa: E402


@dataclass
class Table:
    """A table rendered identically in Markdown and HTML."""

    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    """A heading with paragraphs, tables and figures (PNG bytes keyed by file name)."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, bytes, str]] = field(default_factory=list)


@dataclass
class ReportFiles:
    """Paths written by `write_report`."""

    markdown: Path
    html: Path
    figures: list[Path]


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ordered(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def method_colours(methods: Sequence[str]) -> dict[str, str]:
    """One colour per method, in preset order, so a method looks the same in every figure, and
    no two methods alike: past the default cycle's 10 colours, tab20's 20, then as many hues
    of "turbo" (paper000-leaderboard's 12 methods drew P-controller and SAC in one blue)."""
    from matplotlib.colors import to_hex

    methods = list(dict.fromkeys(methods))
    cycle = [to_hex(c) for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]]
    if len(methods) > len(set(cycle)):
        if len(methods) <= 20:
            cycle = [to_hex(plt.get_cmap("tab20")(i)) for i in range(20)]
        else:
            turbo = plt.get_cmap("turbo")
            cycle = [to_hex(turbo(0.05 + 0.9 * i / (len(methods) - 1)))
                     for i in range(len(methods))]
    return {m: cycle[i] for i, m in enumerate(methods)}


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def median_reach(reaches: Sequence[tuple[int, float] | None]) -> tuple[int, float] | None:
    """The median seed's (env steps, wall-clock s) to a threshold, seeds ordered by steps with
    one that never reached it (None) the slowest; of an even count the upper of the middle two.
    So None ("not reached") unless more than half of the seeds reached it, and the seconds are
    the same seed's. (The lower median of steps and of seconds apart read 500 steps in 10 s
    where one seed took 500 steps in 40 s and the other 1,000 in 10 s, and 2 of 4 seeds that
    reached it as "reached".)"""
    ordered = sorted(reaches, key=lambda r: (r is None, r or (0, 0.0)))
    return ordered[len(ordered) // 2]


def _env_subset(cell: Cell, env_kwargs: dict[str, Any]) -> bool:
    return all(cell.env_kwargs.get(k) == v for k, v in env_kwargs.items())


def collect(preset: Preset, store: Store) -> tuple[dict[str, CellMetrics], dict[str, dict]]:
    """Metrics of every done cell of the preset, and the store rows of all its recorded cells."""
    rows = {r["config_hash"]: r for r in store.cell_rows()}
    metrics = {}
    for cell in preset.cells:
        row = rows.get(cell.config_hash)
        if row is not None and row["status"] == "done":
            evaluations = store.evaluations(cell.config_hash)  # its errors name the store
            try:
                metrics[cell.config_hash] = cell_metrics(evaluations)
            except ValueError as err:  # named no store and no cell: a hand-edited store's
                raise ValueError(f"{store.path}: cell {cell.config_hash[:12]}: {err}: a damaged "
                                 "store") from None
    return metrics, rows


def build_sections(preset: Preset, store: Store, reps: int = 2000,
                   artifacts_root: Path | None = None) -> list[Section]:
    """Compute every section of the report (`artifacts_root`: the cells' folders, default
    `default_artifacts_root` of the store)."""
    metrics, rows = collect(preset, store)
    # A failed cell that a worker is running again counts as running, not failed as well
    # ("Not started: -1", and listed under "Failed cells" while it ran).
    live = {m.config_hash for m in store.running() if not store.is_marker_stale(m)}
    rows = {h: r for h, r in rows.items() if not (r["status"] == "failed" and h in live)}
    cells = preset.cells
    tasks = _ordered([c.task_label for c in cells])
    methods = _ordered([c.method for c in cells])
    groups: dict[tuple[str, str], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.task_label, cell.method), []).append(cell)

    sections = [_status_section(preset, store, metrics, rows, artifacts_root)]

    success = Table(["Task"] + methods, [])
    for task in tasks:
        row = [task]
        for method in methods:
            done = [c for c in groups.get((task, method), []) if c.config_hash in metrics]
            if not done:
                row.append("–")
                continue
            planned = len(groups[(task, method)])
            seeds = (f"{len(done)} of {planned} seeds" if len(done) < planned
                     else f"{len(done)} seed" + ("s" if len(done) != 1 else ""))
            if replayed_seeds([metrics[c.config_hash] for c in done]):
                seeds += " replaying one run"
            elif len(done) > 1:  # the pooled interval hides how far apart the seeds are
                rates = [metrics[c.config_hash].success_rate for c in done]
                low, high = percent(min(rates)), percent(max(rates))  # 100/200, 101/200: 50
                seeds += f": all {low}%" if min(rates) == max(rates) else f": {low}–{high}%"
            row.append(_pooled_rate([metrics[c.config_hash] for c in done]) + f" · {seeds}")
        success.rows.append(row)
    sections.append(Section(
        "Final success rate",
        [f"Final-policy evaluation: {preset.cells[0].eval_episodes} episodes per cell on fixed "
         "evaluation seeds, pooled over training seeds; brackets: 95% Wilson interval over "
         "distinct episodes (identical replays, as a deterministic policy on a noiseless task "
         "produces for every seed, or a scripted method for every training seed, count once: "
         "'k distinct'). The interval counts episodes, not training seeds: after the number "
         "of seeds, the lowest and highest seed's rate; the interval over seeds is in "
         "'Aggregates across tasks and seeds'."]
        + _env_kwargs_notes(tasks, methods, groups)
        + ([] if metrics else ["No cell of this preset has finished yet, so this table and the "
                               "ones below are empty: see the run status above and the failed "
                               "cells at the end."]),
        [success],
    ))

    if preset.reference:
        sections.append(_reference_section(preset, groups, metrics))

    cycle = Table(["Task", "Method", "Steps to insertion", "Seconds to insertion",
                   "Final distance (mm)", "Peak force mean / max (N)"], [])
    reach = Table(["Task", "Method"] + [
        f"Env steps to {t:.0%} (median, seeds reached)" for t in THRESHOLDS
    ] + [f"Wall-clock s to {t:.0%} (median)" for t in THRESHOLDS], [])

    for (task, method), group in groups.items():
        done = [metrics[c.config_hash] for c in group if c.config_hash in metrics]
        if not done:
            continue

        def mean_of(values: list[float | None]) -> float | None:
            present = [v for v in values if v is not None]
            return statistics.fmean(present) if present else None

        forces = [m.max_peak_force_n for m in done if m.max_peak_force_n is not None]
        cycle.rows.append([
            task, method,
            _fmt(mean_of([m.mean_steps_to_success for m in done])),
            _fmt(mean_of([m.mean_seconds_to_success for m in done]), 2),
            _fmt(mean_of([m.mean_final_distance_mm for m in done]), 2),
            f"{_fmt(mean_of([m.mean_peak_force_n for m in done]))} / "
            f"{_fmt(max(forces, default=None))}",
        ])
        if group[0].budget_steps > 0:
            steps_cols, clock_cols = [], []
            for threshold in THRESHOLDS:
                reached = sum(m.reach[threshold] is not None for m in done)
                # A seed that never reached it counts as the slowest (`benchmark.serl_curves`
                # too): a median over the hits alone ranked a method that reached it on 2 of 4
                # seeds ahead of one as fast on every seed that reached it on 3.
                median = median_reach([m.reach[threshold] for m in done])
                if median is None:
                    steps_cols.append(f"not reached ({reached}/{len(done)})")
                    clock_cols.append("–")
                else:
                    steps_cols.append(f"{median[0]:.0f} ({reached}/{len(done)})")
                    clock_cols.append(f"{median[1]:.1f}")
            reach.rows.append([task, method] + steps_cols + clock_cols)
    sections.append(Section(
        "Cycle time, final distance and contact force",
        ["Steps and seconds to insertion average successful episodes; distance and force "
         "average all final-evaluation episodes; then averaged over seeds."],
        [cycle],
    ))
    if reach.rows:
        sections.append(Section(
            "Time to threshold",
            ["First learning-curve evaluation whose success rate reaches the threshold (the "
             "run may fall below it later: see the learning curves); the median seed by steps "
             "(of an even count the slower middle one), a seed that never reached it counted "
             "as the slowest, so 'not reached' unless more than half of the seeds reached it; "
             "wall-clock is the same seed's."],
            [reach],
        ))

    colours = method_colours(methods)
    # Labels are the preset's text: "SAC $\nope$" as matplotlib's math ended a report of a
    # finished matrix, and "$5 to $^" lost its dollars in the figures alone (matrix18).
    with plt.rc_context({"text.parse_math": False}):
        sections.append(_aggregate_section(cells, metrics, reps, colours))
        curves = _learning_curves(cells, metrics, tasks, colours)
    if curves is not None:
        sections.append(Section("Learning curves", [
            "Success rate of the learning-curve evaluations, mean over seeds (their k-th "
            "evaluations, at the mean of their env steps; where seeds evaluated a different "
            "number of times, their curves interpolated and drawn without markers); shaded: "
            "min–max."
        ], figures=[curves]))
    sections.append(_failures_section(preset, rows))
    return sections


def _status_section(
    preset: Preset, store: Store, metrics: dict[str, CellMetrics], rows: dict[str, dict],
    artifacts_root: Path | None = None,
) -> Section:
    hashes = {c.config_hash for c in preset.cells}
    failed = sum(1 for h in hashes if h in rows and rows[h]["status"] == "failed")
    markers = [m for m in store.running() if m.config_hash in hashes]
    running = sum(not store.is_marker_stale(m) for m in markers)
    # Claimed by a run that was killed: not "not started" (`matrix status` says interrupted).
    interrupted = sum(store.is_marker_stale(m) and m.config_hash not in rows for m in markers)
    done_rows = [rows[h] for h in hashes if h in metrics]

    def values(key: str) -> list[str]:
        return sorted({str(r[key]) for r in done_rows})

    def distinct(key: str) -> str:
        return ", ".join(values(key)) or "–"

    # Per method: methods run one at a time with other --workers each (the README's way) are
    # each reproducible; only cells of one method at several counts may differ by it, and only
    # of a method that learns (a scripted one computes no torch floats; newuser22).
    method_threads: dict[str, set[int]] = {}
    for cell in preset.cells:
        if cell.config_hash in metrics and _learns(cell.agent):
            count = json.loads(rows[cell.config_hash]["info_json"] or "{}").get("torch_threads")
            if count is not None:
                method_threads.setdefault(cell.method or cell.agent, set()).add(count)
    split = {m: sorted(counts) for m, counts in method_threads.items() if len(counts) > 1}
    threads = sorted(set().union(*method_threads.values()))

    table = Table(["", ""], [
        ["Cells", str(len(hashes))],
        ["Done", str(len(metrics))],
        ["Failed", str(failed)],
        ["Running", str(running)],
        *([["Interrupted (`matrix run` resumes them)", str(interrupted)]] if interrupted else []),
        ["Not started", str(len(hashes) - len(metrics) - failed - running - interrupted)],
        ["Suite version / commit", f"{distinct('suite_version')} / {distinct('suite_commit')}"],
        ["MuJoCo / torch", f"{distinct('mujoco_version')} / {distinct('torch_version')}"],
        ["Torch threads per cell", ", ".join(map(str, threads)) or "–"],
        ["Training seeds / evaluation seeds",
         f"{list(preset.seeds)} / {_seed_list(preset.eval_seeds)}"],
    ])
    # `load_preset` appends " at task version(s) 1, 2" to the file's name: outside the code span.
    file, at_versions, versions = preset.source.partition(" at task version(s) ")
    paragraphs = [preset.description, f"Preset file: `{file}`{at_versions}{versions}; report "
                  f"generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC."]
    from benchmark.learned_reward import cells_with_another_classifier
    from benchmark.matrix import default_artifacts_root

    relabelled = cells_with_another_classifier(
        preset.cells, set(metrics), artifacts_root or default_artifacts_root(store.path))
    if relabelled:
        paragraphs.insert(0, f"WARNING: {len(relabelled)} of the done cells were rewarded by "
                             "another reward classifier than the one their reward_classifier "
                             "names from this folder (its files differ), e.g. "
                             + "; ".join(c.describe() for c in relabelled[:3]) + ": run the "
                             "report from the folder the cells ran in, or the preset into a "
                             "new store.")
    moved = [c.describe() for c in cells_on_another_task_version(preset, metrics)]
    if moved:
        paragraphs.insert(0, f"WARNING: {len(moved)} of the done cells were evaluated on another "
                             "version of their task than this code builds (their episodes' "
                             "task version key differs: the dynamics, scene, reward or a default "
                             "changed since), e.g. " + "; ".join(moved[:3]) + ". Their numbers "
                             "are not comparable with the current tasks': run the preset into a "
                             "new store.")
    # A store resumed across a code or library change pools old and new cells silently: the
    # task version key covers the env, not the agents or the libraries.
    mixed = [key for key in ("suite_commit", "mujoco_version", "torch_version")
             if len(values(key)) > 1]
    if mixed:
        said = "; ".join(f"{key.replace('_', ' ')} {distinct(key)}" for key in mixed)
        paragraphs.insert(0, f"WARNING: the done cells were made by different code or libraries "
                             f"({said}): a store resumed across a change pools them in one row; "
                             "run the preset into a new store to compare like with like.")
    if split:
        said = "; ".join(f"{m}: {', '.join(map(str, counts))}" for m, counts in split.items())
        paragraphs.insert(0, f"WARNING: cells of one method ran with different torch thread "
                             f"counts ({said}; `matrix run --workers` and the host's cores set "
                             "it): a learned cell's numbers are reproducible at one thread "
                             "count, so these cells may differ by it.")
    fixtures = sum('"fixture"' in (r["info_json"] or "") for r in done_rows)
    if fixtures:
        paragraphs.insert(0, f"WARNING: {fixtures} of the done cells were produced by a test "
                             "fixture cell function, not by training and evaluation; their numbers "
                             "are not benchmark results.")
    return Section("Status", paragraphs, [table])


def _seed_list(seeds: Sequence[int]) -> str:
    """``1000…1049 (50)`` for a run of consecutive seeds, else the seeds themselves (the first
    and last of 4 scattered seeds read as a million consecutive ones)."""
    seeds = list(seeds)
    if not seeds:
        return "–"
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 2:
        return f"{seeds[0]}…{seeds[-1]} ({len(seeds)})"
    if len(seeds) <= 8:
        return ", ".join(map(str, seeds))
    return f"{', '.join(map(str, seeds[:3]))}, …, {seeds[-1]} ({len(seeds)})"


def cells_on_another_task_version(preset: Preset, metrics: dict[str, CellMetrics]) -> list[Cell]:
    """The done cells whose final episodes carry a task version key other than the one this
    code gives their task and env kwargs: a store resumed across a change of the dynamics
    reuses its old cells (the cell's hash names the task, not what the task does)."""
    from benchmark.learned_reward import evaluated_task_kwargs
    from envs.version_key import task_version_key

    current: dict[str, str | None] = {}
    moved = []
    for cell in preset.cells:
        if cell.config_hash not in metrics:
            continue
        keys = {e.get("task_version_key") for e in metrics[cell.config_hash].final_episodes}
        keys.discard(None)  # a test fixture's episodes carry none
        if not keys:
            continue
        identity = canonical_json([cell.task_id, dict(cell.env_kwargs)])
        if identity not in current:  # a learned reward's run scores the task it wraps
            kwargs = evaluated_task_kwargs(cell.task_id, cell.env_kwargs)
            current[identity] = None if kwargs is None else task_version_key(cell.task_id, kwargs)
        if current[identity] is not None and keys != {current[identity]}:
            moved.append(cell)
    return moved


def _reference_section(
    preset: Preset, groups: dict[tuple[str, str], list[Cell]], metrics: dict[str, CellMetrics]
) -> Section:
    table = Table(["Task", "Method", "Ours", "Paper", "Paper source"], [])
    for entry in preset.reference:
        ours = "–"
        matched = [c for (_, method), group in groups.items() if method == entry.agent
                   for c in group
                   if c.task_id == entry.task and _env_subset(c, dict(entry.env_kwargs))]
        done = [metrics[c.config_hash] for c in matched if c.config_hash in metrics]
        label = matched[0].task_label if matched else entry.task
        if done:
            ours = _pooled_rate(done)
        paper = format_rate(entry.successes, entry.trials,
                            *wilson_interval(entry.successes, entry.trials))
        table.rows.append([label, entry.agent, ours, paper, entry.note])
    paragraphs = [f"Reference: {preset.reference_source}."]
    if preset.reference_note:
        paragraphs.append(preset.reference_note)
    return Section("Ours beside the paper", paragraphs, [table])


def _aggregate_section(
    cells: Sequence[Cell], metrics: dict[str, CellMetrics], reps: int,
    colours: dict[str, str],
) -> Section:
    done = [c for c in cells if c.config_hash in metrics]
    # One aggregate per task version where a task ran at two: v1 and v2 of a task are two
    # tasks to rliable, and a mean over both would weigh a method by the versions it ran.
    # Other tasks at other versions (the NIST board's v0 beside USB-v1) are just tasks.
    versions: dict[str, set[str]] = {}
    for c in done:
        versions.setdefault(c.task_id.rsplit("-v", 1)[0], set()).add(_task_version(c))
    split = any(len(v) > 1 for v in versions.values())

    def method(c: Cell) -> str:
        return f"{c.method} · {_task_version(c)}" if split else c.method

    base = {method(c): c.method for c in done}
    runs: dict[tuple[str, str], list[Cell]] = {}
    for c in done:
        runs.setdefault((method(c), c.task_label), []).append(c)
    # Seeds that replay one run (a scripted baseline: the same episodes for every training
    # seed) are one seed here: three copies gave a zero-width interval, as if measured. A task
    # with one finished cell cannot say, and does not veto what the others show.
    compared = {(m, task): group for (m, task), group in runs.items() if len(group) > 1}
    replayed = {m for m, _ in compared} - {
        m for (m, _), group in compared.items()
        if not replayed_seeds([metrics[c.config_hash] for c in group])}
    # A replaying method's one seed per task gets one label on every task: where a cell of
    # its lowest seed was missing, tasks kept different seeds and the method's score matrix
    # was half empty (the method left out of the aggregates).
    label = {m: min(c.seed for (n, _), group in runs.items() if n == m for c in group)
             for m in replayed}
    scores = []
    for (m, task), group in runs.items():
        if m in replayed:
            first = min(group, key=lambda c: c.seed)
            scores.append((m, task, label[m], metrics[first.config_hash].success_rate))
        else:
            scores += [(m, task, c.seed, metrics[c.config_hash].success_rate) for c in group]
    tasks_of: dict[str, set[str]] = {}
    seeds_of: dict[str, set[int]] = {}
    for c in cells:  # failed cells too: a method whose every cell on a task failed lacks it
        if method(c) in base:
            tasks_of.setdefault(method(c), set()).add(c.task_label)
            if method(c) not in replayed:  # their seeds count as one
                seeds_of.setdefault(method(c), set()).add(c.seed)
    matrices, skipped = score_matrices(scores, tasks_of, seeds_of)
    for name in _ordered([method(c) for c in cells if method(c) not in base]):
        skipped[name] = "no finished cell"  # every cell failed or not run: no row said so
    section = Section("Aggregates across tasks and seeds", [
        "Score: final success rate of a cell. IQM and mean over (seed, task) scores with 95% "
        f"stratified bootstrap intervals ({reps} resamples, rliable). With few seeds a "
        "percentile bootstrap is narrower than its name: it held the true mean in 76-84% of "
        "simulated matrices with 2 seeds, 82-85% with 3, 89-91% with 5 (`python -m "
        "benchmark.bench_interval_coverage`, its default seed, 2026-12-06)."
        + (" One aggregate per task version." if split else "")
    ])
    for name in sorted(replayed):
        section.paragraphs.append(
            f"{name}: its seeds replay the same episodes on every task (the training seed "
            "does not change this method), so they count as one seed.")
    estimates = aggregate(matrices, reps=reps)
    # The mean's interval has no width only where every seed scored alike on each task (the
    # IQM's may have none while they differ: it trims them).
    agree = {m: a.runs >= 2 and a.mean_ci[0] == a.mean_ci[1] for m, a in estimates.items()}
    section.tables.append(Table(
        ["Method", "IQM [95% CI]", "Mean [95% CI]", "Seeds x tasks"],
        [[m, _with_interval(a.iqm, a.iqm_ci, a.runs, agree[m]),
          _with_interval(a.mean, a.mean_ci, a.runs, agree[m]), f"{a.runs} x {a.tasks}"]
         for m, a in estimates.items()],
    ))
    if any(a.runs < 2 for a in estimates.values()):
        section.paragraphs.append(
            "No interval for a method with one seed: the stratified bootstrap resamples seeds "
            "within each task, so one seed gives no measure of spread.")
    if any(agree.values()):
        section.paragraphs.append(
            "No interval either where every seed of a method scored the same on each task: "
            "resampling them cannot vary, which says nothing of how precise the scores are "
            "(see each task's success interval above).")
    for method, reason in skipped.items():
        section.paragraphs.append(f"{method}: left out of the aggregates, {reason}.")
    if matrices:
        taus, profiles, cis = performance_profile(matrices, reps=min(reps, 1000))
        fig, ax = plt.subplots(figsize=(6, 4))
        styles = ("-", "--", ":", "-.")
        drawn: dict[str, int] = {}  # method -> how many of its task versions are drawn
        for name in matrices:
            colour = colours[base[name]]  # a method's colour for each of its task versions
            # ... and a line style per version: v0 and v1 of one method were one blue line.
            rank = drawn[base[name]] = drawn.get(base[name], -1) + 1
            # A step function (the fraction of runs above tau holds until the next grid point):
            # joined by lines, a P-controller's 1.0 sloped down from tau 0.975 (newuser16).
            ax.plot(taus, profiles[name], label=name, color=colour,
                    linestyle=styles[rank % len(styles)], drawstyle="steps-post")
            # One seed: no spread to show (a band of no width read as a precise one).
            if matrices[name].shape[0] > 1:
                ax.fill_between(taus, cis[name][0], cis[name][1], alpha=0.2, color=colour,
                                step="post")
        ax.set_xlabel("success rate τ")
        ax.set_ylabel("fraction of runs with score > τ")
        ax.set_title("Performance profile (bands: 95% stratified bootstrap; seeds x tasks "
                     "in the table above)", fontsize=9)
        # Below the axes: nine labels of up to 90 characters (shipped presets) hid the curves.
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.15))
        section.figures.append(("performance_profile.png", _png(fig), "Performance profile"))
    return section


def seeds_curve(curves: Sequence[Sequence[CurvePoint]]) -> tuple[bool, np.ndarray, np.ndarray]:
    """Seeds' learning curves on common env steps: (aligned, steps, rates (seeds, steps)).

    Seeds evaluate at slightly different env steps (the first episode end after each
    eval_every). With as many evaluations each (aligned), the k-th ones go together, at the
    mean of their steps; else each curve is interpolated onto the union of their steps
    (averaging per exact step would drop seeds in and out), values no evaluation gave, which
    the plot draws without markers.
    """
    if len({len(c) for c in curves}) == 1:
        steps = np.mean([[p.env_steps for p in c] for c in curves], axis=0)
        return True, steps, np.array([[p.success_rate for p in c] for c in curves])
    steps = np.array(sorted({p.env_steps for c in curves for p in c}), dtype=float)
    return False, steps, np.stack([np.interp(steps, [p.env_steps for p in c],
                                             [p.success_rate for p in c]) for c in curves])


def _learns(agent: str) -> bool:
    """Whether the registry's `agent` learns (True for a name it does not know: a store's
    agent this code has no longer, or a test's)."""
    from agents import agent_spec

    try:
        return getattr(agent_spec(agent).cls, "learns", True)
    except (KeyError, ValueError):
        return True


def _task_version(cell: Cell) -> str:
    """"v1" for InsertBench/USB-v1 (Gymnasium's version suffix)."""
    return "v" + cell.task_id.rsplit("-v", 1)[-1] if "-v" in cell.task_id else "unversioned"


def _with_interval(point: float, interval: tuple[float, float], seeds: int,
                   agree: bool = False) -> str:
    """`0.600 [0.400, 0.800]`, or the point alone where the interval is degenerate: one seed,
    or seeds that ``agree`` on every task (resampling them cannot vary: `0.000 [0.000, 0.000]`
    from two seeds of 0/5 read as exact beside the table's `0/10 (0% [0, 28])`)."""
    if seeds < 2:
        return f"{point:.3f} (1 seed: no CI)"
    if agree:
        return f"{point:.3f} ({seeds} seeds agree on every task: no CI)"
    if interval[0] == interval[1]:  # an IQM whose trimmed quarters hold every differing score
        return f"{point:.3f} (no CI: every resample trims the scores that differ)"
    return f"{point:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


#: Curves with at most this many evaluations are drawn with a marker at each.
MARKED_POINTS = 12


def _learning_curves(
    cells: Sequence[Cell], metrics: dict[str, CellMetrics], tasks: list[str],
    colours: dict[str, str],
) -> tuple[str, bytes, str] | None:
    """Success against env steps per task; a method without online steps (budget 0: BC,
    scripted) is a dashed level, so the learners are read against it."""
    trained = [c for c in cells if c.budget_steps > 0 and c.config_hash in metrics]
    if not trained:
        return None
    shown = [t for t in tasks if any(c.task_label == t for c in trained)]
    columns = min(3, len(shown))
    rows = (len(shown) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.2 * rows), squeeze=False)
    for ax, task in zip(axes.flat, shown, strict=False):
        by_method: dict[str, list[CellMetrics]] = {}
        for cell in trained:
            if cell.task_label == task:
                by_method.setdefault(cell.method, []).append(metrics[cell.config_hash])
        for method, runs in by_method.items():
            aligned, steps, rates = seeds_curve([m.curve for m in runs if m.curve])
            mean, low, high = rates.mean(axis=0), rates.min(axis=0), rates.max(axis=0)
            # Markers on a short curve: one evaluation per run (budget = eval_every, as three
            # shipped presets) drew a line of one point, which matplotlib does not show.
            ax.plot(steps, mean, label=method, color=colours[method], markersize=4,
                    marker="o" if aligned and len(steps) <= MARKED_POINTS else None)
            if len(steps) > 1:
                ax.fill_between(steps, low, high, alpha=0.2, color=colours[method])
            else:  # a band of no width: the seeds' range as an error bar
                ax.errorbar(steps, mean, yerr=[mean - low, high - mean], fmt="none",
                            ecolor=colours[method], capsize=3)
        levels: dict[str, list[float]] = {}
        for cell in cells:
            if cell.task_label == task and cell.budget_steps == 0 and cell.config_hash in metrics:
                levels.setdefault(cell.method, []).append(metrics[cell.config_hash].success_rate)
        for method, rates in levels.items():
            ax.axhline(float(np.mean(rates)), linestyle="--", linewidth=1,
                       color=colours[method], label=f"{method} (no online steps)")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("env steps")
        ax.set_ylabel("success rate (seeds' mean; band: their range)", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.tight_layout()
    # One legend for every task, below them: inside each axes, long labels (shipped presets:
    # nine, of up to 90 characters) hid the curves and the next task's plot.
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        handles, labels = ax.get_legend_handles_labels()
        legend |= {label: handle for label, handle in zip(labels, handles, strict=True)
                   if label not in legend}
    fig.legend(legend.values(), legend.keys(), fontsize=7, loc="upper left",
               bbox_to_anchor=(0.0, 0.0), ncol=2 if columns > 1 else 1)
    return "learning_curves.png", _png(fig), "Learning curves"


def _failures_section(preset: Preset, rows: dict[str, dict]) -> Section:
    failed = [(c, rows[c.config_hash]) for c in preset.cells
              if c.config_hash in rows and rows[c.config_hash]["status"] == "failed"]
    table = Table(["Cell", "Hash", "Error"], [
        [c.describe(), c.short_hash, (r["error"] or "").splitlines()[0][:200] if r["error"]
         else ""] for c, r in failed
    ])
    return Section("Failed cells", [] if failed else ["None."], [table] if failed else [])


def _env_kwargs_notes(tasks: Sequence[str], methods: Sequence[str],
                      groups: dict[tuple[str, str], list[Cell]]) -> list[str]:
    """A line for each task whose methods ran on different env kwargs (an agent's own
    `env_kwargs` in the preset), naming the kwargs that differ: one row of the table would
    read as one task."""
    differing: dict[str, list[str]] = {}  # what differs -> the tasks it differs on
    for task in tasks:
        kwargs = {m: dict(groups[(task, m)][0].env_kwargs) for m in methods
                  if groups.get((task, m))}
        keys = sorted({k for kw in kwargs.values() for k in kw
                       if len({canonical_json(v.get(k)) for v in kwargs.values()}) > 1})
        if keys:
            what = "; ".join(
                f"{m}: " + ", ".join(f"{k}={kw[k]}" if k in kw else f"{k} default" for k in keys)
                for m, kw in kwargs.items())
            differing.setdefault(what, []).append(task)
    return [f"{', '.join(on)}: the methods ran on different env kwargs: {what}."
            for what, on in differing.items()]


def _pooled_rate(done: Sequence[CellMetrics]) -> str:
    """Success over cells pooled, the interval counted over their distinct episodes, pooled (a
    replay in another seed's cell counts once too)."""
    return format_distinct_rate(
        sum(m.successes for m in done),
        sum(m.trials for m in done),
        pooled_distinct_summary(done)[1],
    )


def _markdown_text(text: str) -> str:
    """`text` as Markdown that shows it as written: outside `code spans`, "<" and "&" are
    escaped (a label "TD3 <all fail>" was an HTML tag to CommonMark, shown as "TD3"), and so
    is a backtick that opens no span (one left the rest of the text unescaped)."""
    parts = re.split(r"(`[^`]+`)", text)  # odd parts are the code spans
    return "".join(part if i % 2 else
                   part.replace("&", "\\&").replace("<", "\\<").replace("`", "\\`")
                   for i, part in enumerate(parts))


def _markdown_cell(text: str) -> str:
    return _markdown_text(text).replace("|", "\\|").replace("\n", " ")


def _html_text(text: str) -> str:
    """`text` escaped for HTML, its `code spans` as <code> (they read as backticks)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def render_markdown(title: str, sections: Sequence[Section]) -> str:
    """Markdown with figures referenced as sibling PNG files."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [_markdown_text(paragraph), ""]
        for table in section.tables:
            lines.append("| " + " | ".join(_markdown_cell(h) for h in table.header) + " |")
            lines.append("|" + "---|" * len(table.header))
            for row in table.rows:
                lines.append("| " + " | ".join(_markdown_cell(v) for v in row) + " |")
            lines.append("")
        for name, _, caption in section.figures:
            lines += [f"![{caption}]({name})", ""]
    return "\n".join(lines)


def render_html(title: str, sections: Sequence[Section]) -> str:
    """One self-contained HTML page: inline CSS, figures as base64 data URIs."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{esc(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;"
        "padding:0 1em}div.scroll{overflow-x:auto}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "h1,h2,p,td,th{overflow-wrap:anywhere}"
        "th{background:#f3f3f3}img{max-width:100%}</style>",
        "</head><body>", f"<h1>{esc(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{esc(section.title)}</h2>")
        parts += [f"<p>{_html_text(p)}</p>" for p in section.paragraphs]
        for table in section.tables:
            head = ("" if not any(table.header) else "<thead><tr>" + "".join(
                f"<th>{_html_text(h)}</th>" for h in table.header) + "</tr></thead>")
            parts.append(f"<div class='scroll'><table>{head}<tbody>")
            for row in table.rows:
                parts.append("<tr>" + "".join(f"<td>{_html_text(v)}</td>" for v in row)
                             + "</tr>")
            parts.append("</tbody></table></div>")
        for _, png, caption in section.figures:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f"<figure><img alt='{esc(caption)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{esc(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


#: The figures a report may write beside report.md (written before it).
REPORT_FIGURES = ("learning_curves.png", "performance_profile.png")


def write_report(preset: Preset, store: Store, out_dir: Path, reps: int = 2000,
                 artifacts_root: Path | None = None) -> ReportFiles:
    """Write ``report.md`` (+ PNG files) and ``report.html`` for a preset into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = build_sections(preset, store, reps=reps, artifacts_root=artifacts_root)
    for stale in REPORT_FIGURES:
        (out_dir / stale).unlink(missing_ok=True)  # a figure this report lacks must not linger
    title = f"InsertBench matrix report: {preset.name}"
    figures = []
    for section in sections:
        for name, png, _ in section.figures:
            path = out_dir / name
            path.write_bytes(png)
            figures.append(path)
    markdown = out_dir / "report.md"
    markdown.write_text(render_markdown(title, sections), encoding="utf-8")
    page = out_dir / "report.html"
    page.write_text(render_html(title, sections), encoding="utf-8")
    return ReportFiles(markdown, page, figures)
