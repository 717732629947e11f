"""The static leaderboard site: plain HTML, one CSS and one small script, no server.

    index.html            one section per track: verified, self-reported and stale tables
                          (sortable by clicking a header, filterable by a text box), and the
                          success-vs-training-cost plot
    entries/<track>-<id>.html
                          one page per entry: per-task table with intervals, the PyBullet
                          sim-to-sim check, training cost, metadata, GIFs of its best and worst
                          evaluation episode (entries of earlier track versions:
                          entries/<track>-<id>-track-v<N>.html; stale by their task version
                          keys: entries/<track>-<id>-keys-<digest>.html)
    media/<id>-*.gif      the GIFs (128x96, 10 fps), re-rendered from the stored policy; named
                          by their episode (task, seed, version key), so a re-verified entry's
                          new episode is not captioned under an earlier round's GIF
    plots/<track>.png     mean success against training env steps
    style.css, table.js

Every number is recomputed from the ledger's episodes (`leaderboards.scoring`). Rendering
into an earlier site removes its pages, GIFs and plots that the ledger no longer has (a deleted
entry's page stayed published, unlinked).
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.metrics import percent
from envs.episode import FORCE_LIMIT_FACTOR, FORCE_LIMIT_N
from envs.json_files import written_whole
from envs.version_key import PYBULLET_REVISION
from leaderboards.ledger import (
    Ledger,
    LedgerError,
    entry_track_version,
    is_stale,
    keys_digest,
    sim2sim_revision,
    stored_policy_paths,
)
from leaderboards.scoring import EntryScore, Sim2SimTask, TrackTables, sim2sim_scores, track_tables
from leaderboards.tracks import TASK_VERSION, TRACK_VERSION, TRACKS

GIF_STRIDE = 5  # 640x480 render -> 128x96


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{percent(value)}%"


def _interval(point: float, ci: tuple[float, float]) -> str:
    if math.isnan(point):
        return "-"
    return f"{percent(point)}% <small>[{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]</small>"


def _num(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}{unit}"


def _platform(found: Mapping[str, str] | None) -> str:
    """Where an evaluation ran (its floats depend on it: `leaderboards.recheck`)."""
    if not found:
        return "; platform not recorded"
    return "; on " + _e(", ".join(f"{k} {v}" for k, v in found.items()))


#: Tooltip of the force-limit columns.
FORCE_LIMIT_TITLE = (
    f"Time in control periods whose peak contact force exceeded the connector's limit: "
    f"{FORCE_LIMIT_FACTOR:g} x the upper bound of its documented insertion force range "
    f"(ConnectorSpec.mating; e.g. USB-A 35 N -> {FORCE_LIMIT_FACTOR * 35:g} N), "
    f"{FORCE_LIMIT_N:g} N for connectors without documented forces")
SIM2SIM_TITLE = (
    "The same policy on the same hidden seeds in PyBullet (never ranked; run at verification "
    "or rerun since: the entry page says when, and on which PyBullet model revision): success "
    "in MuJoCo, in MuJoCo without sensor variation (noiseless, as PyBullet runs), and in "
    "PyBullet over the tasks PyBullet can run")
NOISELESS_TITLE = (
    "MuJoCo with noiseless=True on the same hidden seeds: no F/T noise, drift or reset "
    "variation, as PyBullet runs the task; the gap from here to PyBullet is the engine's")


def page_name(entry: dict[str, Any]) -> str:
    """The entry's page under entries/, named by its track as well: one policy may enter
    several tracks (a zero-shot policy on families-test and offsets), and one page named by its
    id alone showed whichever track was rendered last, linked from both. An earlier track
    version's entry, or one stale by its task version keys, gets its own too: its policy may be
    entered again on the current ones."""
    version = entry_track_version(entry)
    suffix = "" if version == TRACK_VERSION else f"-track-v{version}"
    if is_stale(entry):
        suffix += f"-keys-{keys_digest(entry)}"
    return f"{entry['track']}-{entry['entry_id']}{suffix}.html"


def _sim2sim_cell(entry: dict[str, Any]) -> tuple[str, str]:
    """(sort value, cell HTML) of the index's sim-to-sim column."""
    tasks = sim2sim_scores(entry)
    if tasks is None:
        return "", '<span title="measured when an entry is verified">-</span>'
    run = [t for t in tasks if t.supported]
    skipped = "; ".join(f"{t.label}: n/a ({t.reason})" for t in tasks if not t.supported)
    if not run:
        return "", f'<span title="{_e(skipped)}">n/a</span>'
    n = sum(t.episodes for t in run)
    mujoco = sum(t.mujoco_successes for t in run) / n
    bullet = sum(t.pybullet_successes for t in run) / n
    title = f"over {', '.join(t.label for t in run)}" + (f"; {skipped}" if skipped else "")
    replays = _distinct_note(sum(t.pybullet_distinct[1] for t in run), n,
                             "its PyBullet episodes rest on replays: a deterministic policy on "
                             "a noiseless task replays one episode per seed", of=True)
    quiet = ""
    if all(t.noiseless_successes is not None for t in run):
        replayed = sum(t.noiseless_distinct for t in run)
        quiet = (f' <small title="{_e(NOISELESS_TITLE)}">(noiseless '
                 f'{_pct(sum(t.noiseless_successes for t in run) / n)}'
                 f'{"" if replayed == n else f", {replayed} of {n} distinct"})</small>')
    return (f"{bullet:.6g}", f'<span title="{_e(title)}">{_pct(mujoco)}{quiet} &rarr; '
            f'{_pct(bullet)}{replays} <small>({len(run)}/{len(tasks)} tasks)</small></span>')


def _sort_value(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else \
        f"{value:.6g}"


def _page(title: str, body: str, depth: int = 0) -> str:
    up = "../" * depth
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><link rel=\"stylesheet\" href=\"{up}style.css\">"
            f"<link rel=\"icon\" href=\"data:,\"></head>"
            f"<body>{body}<script src=\"{up}table.js\"></script></body></html>\n")


def _badge(score: EntryScore, stale: bool) -> str:
    if stale:  # scored on the dev seeds; whether it was ever verified is said beside
        verified = "hidden" in score.entry["evaluations"]
        return ('<span class="badge stale">stale</span> ' + (
            '<span class="badge verified" title="verified on hidden seeds under its own task '
            'versions; shown: that hidden evaluation">was verified</span>' if verified else
            '<span class="badge self">self-reported</span>'))
    if score.evaluation == "hidden":
        return '<span class="badge verified">verified</span>'
    return '<span class="badge self">self-reported</span>'


def _table(track_name: str, kind: str, scores: Sequence[EntryScore], labels: Sequence[str],
           stale: bool = False) -> str:
    if not scores:
        return f'<p class="empty">No {kind} entries.</p>'
    head = ["Rank", "Entry", "Status", "Method", "Mean success", "IQM"]
    head += [f"{label}" for label in labels]
    head += ["P(improvement)", "Cycle time [s]", "Peak force [N]",
             f'<span title="{_e(FORCE_LIMIT_TITLE)}">Time &gt; limit [s]</span>',
             f"Time &gt; {FORCE_LIMIT_N:.0f} N [s]", "Jerk [m/s³]",
             f'<span title="{_e(SIM2SIM_TITLE)}">MuJoCo &rarr; PyBullet</span>',
             "Env steps", "Demos", "Wall-clock [h]"]
    numeric = {0, 4, 5} | set(range(6, len(head)))
    ths = "".join(f'<th data-type="{"num" if i in numeric else "text"}">{h}</th>'
                  for i, h in enumerate(head))
    rows = []
    for s in scores:
        e = s.entry
        per_task = {t.label: t for t in s.tasks}
        cells = [
            (_sort_value(s.rank), "-" if s.rank is None else str(s.rank)),
            (e["name"], f'<a href="entries/{page_name(e)}">{_e(e["name"])}</a>'
                        + _given_the_goal(e)),
            (s.evaluation, _badge(s, stale)),
            (e["method"], f'<span class="words">{_e(e["method"])}</span>'),
            (_sort_value(s.mean), _interval(s.mean, s.mean_ci) + _replayed(s)),
            (_sort_value(s.iqm), _interval(s.iqm, s.iqm_ci) + _replayed(s)),
        ]
        for label in labels:
            t = per_task.get(label)
            # Marked as the aggregates are: a task of 50 replays of one episode read
            # "100% [21, 100]" like 50 trials.
            cells.append(("", "-") if t is None else
                         (_sort_value(t.rate), _interval(t.rate, t.ci) + _distinct(t)))
        pi = s.prob_improvement
        cells.append((_sort_value(pi), "-" if pi is None else
                      f"{pi:.2f} <small>[{s.prob_improvement_ci[0]:.2f}, "
                      f"{s.prob_improvement_ci[1]:.2f}] vs {_e(s.baseline)}</small>"))
        o = s.overall
        for key, digits in (("cycle_time_s_mean", 2), ("peak_force_n_mean", 1),
                            ("time_above_force_limit_s_mean", 2), ("time_above_20n_s_mean", 2),
                            ("jerk_rms_m_s3_mean", 2)):
            cells.append((_sort_value(o[key]), _num(o[key], digits)))
        cells.append(_sim2sim_cell(e) if not stale else ("", "-"))
        steps = e["training"]["env_steps"]
        wall = e["training"]["wall_clock_s"]
        cells.append((str(steps), f"{steps:,}"))
        cells.append((str(e["training"]["demos"]), str(e["training"]["demos"])))
        cells.append((_sort_value(None if wall is None else wall / 3600),
                      _num(None if wall is None else wall / 3600, 2)))
        tds = "".join(f'<td data-sort="{_e(v)}">{c}</td>' for v, c in cells)
        rows.append(f'<tr class="{"stale" if stale else ""}" '
                    f'data-filter="{_e(e["name"])} {_e(e["method"])}">{tds}</tr>')
    table_id = f"{track_name}-{kind}".replace(" ", "-")
    return (f'<input class="filter" type="search" placeholder="Filter {kind} entries" hidden '
            f'data-table="{table_id}" aria-label="Filter {kind} entries of {track_name}">'
            f'<div class="scroll"><table class="board ranked" id="{table_id}"><thead><tr>{ths}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


#: The most characters of an entry's name the plot writes beside its point (names may have 200).
PLOT_NAME_CHARS = 40


def _plot(tables: TrackTables, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [("verified", tables.verified, "o"), ("self-reported", tables.self_reported, "s")]
    if not any(scores for _, scores, _ in groups):
        return False
    fig, ax = plt.subplots(figsize=(6, 3.4))
    steps = [max(s.entry["training"]["env_steps"], 1) for _, scores, _ in groups for s in scores]
    middle = np.sqrt(float(min(steps)) * float(max(steps)))  # the log axis's centre (floats:
    # the product of two large int counts overflows int64 in numpy)
    names = []
    for name, scores, marker in groups:
        if not scores:
            continue
        x = [max(s.entry["training"]["env_steps"], 1) for s in scores]
        y = [s.mean for s in scores]
        err = np.array([[s.mean - s.mean_ci[0] for s in scores],
                        [s.mean_ci[1] - s.mean for s in scores]])
        ax.errorbar(x, y, yerr=err, fmt=marker, capsize=3, label=name)
        for xi, yi, s in zip(x, y, scores, strict=True):
            # Names run inwards (centred on the axis's centre, where a lone entry sits), and
            # at most PLOT_NAME_CHARS of them, so none leaves the figure.
            side = "center" if math.isclose(xi, middle) else "right" if xi > middle else "left"
            name = s.entry["name"]
            if len(name) > PLOT_NAME_CHARS:
                name = name[:PLOT_NAME_CHARS - 1] + "\u2026"
            # parse_math=False: a submitted name is text; "$}$" as mathtext failed the render.
            names.append(ax.annotate(name, (xi, yi), fontsize=7, parse_math=False,
                                     xytext=({"right": -4, "left": 4, "center": 0}[side], 3),
                                     textcoords="offset points", ha=side))
    ax.set_xscale("log")
    ax.set(xlabel="training env steps, as reported (0 plotted at 1)", ylabel="mean success",
           ylim=(-0.05, 1.05), title=f"{tables.track.name}: success vs training cost")
    # Beside the axes: inside, at the lower right, it covered the 0%-success entries.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    _keep_names_apart(ax, names)
    with written_whole(path) as tmp:  # a full disk leaves no truncated PNG behind
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return True


def _keep_names_apart(ax: Any, names: list[Any]) -> None:
    """Move each name that overlaps a name placed before it away from its point until it
    overlaps none, and join it to its point by a thin line.

    Entries often share a point (several at 100% after 0 steps): their names were written over
    each other. Names in the axes' upper half are placed from the top down and move down, those
    in the lower half from the bottom up and move up, so none is pushed out of the axes.
    """
    renderer = ax.figure.canvas.get_renderer()
    points_per_pixel = 72 / ax.figure.dpi
    middle = ax.transAxes.transform((0, 0.5))[1]

    def height(name: Any) -> float:
        return ax.transData.transform(name.xy)[1]

    upper = sorted((n for n in names if height(n) >= middle), key=height, reverse=True)
    lower = sorted((n for n in names if height(n) < middle), key=height)
    placed = []
    for direction, group in ((-1, upper), (1, lower)):
        for name in group:
            dx, dy = start = name.xyann
            box = name.get_window_extent(renderer)
            while hit := next((b for b in placed if box.overlaps(b)), None):
                # Just past the box it hit: each move clears one placed box for good.
                gap = box.y1 - hit.y0 if direction < 0 else hit.y1 - box.y0
                dy += direction * (gap * points_per_pixel + 0.5)
                name.xyann = (dx, dy)
                box = name.get_window_extent(renderer)
            placed.append(box)
            if dy != start[1]:
                ax.annotate("", name.xy, xytext=(dx, dy), textcoords="offset points",
                            arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5,
                                        "shrinkA": 0, "shrinkB": 3})


def _render_gif(ledger: Ledger, entry: dict[str, Any], episode: dict[str, Any], path: Path) -> None:
    """Replay one evaluation episode (same policy, same seed) with rendering; write a GIF.

    RuntimeError, and no GIF, where the replay ends otherwise than the recorded episode (another
    host's floating point, an edited entry): the caption beside it describes the record."""
    import gymnasium as gym
    import imageio.v2 as imageio

    from envs.episode import run_episode
    from envs.tasks import pinned_versions
    from leaderboards.ledger import stored_policy_paths
    from leaderboards.policy import load_policy
    from leaderboards.tracks import get_track

    task = get_track(entry["track"]).task(episode["task"])
    with pinned_versions():  # the track's version, chosen on purpose: no "upgrade" advice
        env = gym.make(task.task_id, render_mode="rgb_array", **dict(task.env_kwargs))
    try:
        policy = load_policy(entry["policy"]["kind"],
                             stored_policy_paths(ledger, entry)[episode["task"]], env)
        frames: list[np.ndarray] = []
        replay = run_episode(env, policy, episode["seed"], task_id=episode["task_id"],
                             task_version_key=episode["task_version_key"], frames=frames)
    finally:
        env.close()
    if replay.steps_to_success != episode["steps_to_success"]:
        def outcome(steps: int | None) -> str:
            return "failure" if steps is None else f"success after {steps} steps"
        raise RuntimeError(f"replayed here it ends in {outcome(replay.steps_to_success)}, "
                           f"evaluated in {outcome(episode['steps_to_success'])}")
    small = [f[::GIF_STRIDE, ::GIF_STRIDE] for f in frames]
    with written_whole(path) as tmp:  # a truncated GIF would be kept: renders skip existing ones
        imageio.mimsave(tmp, small, duration=100, loop=0)


def _best_and_worst(block: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Best: the fastest success (else the highest return); worst: a failure with the highest
    peak force (else the slowest success)."""
    episodes = block["episodes"]

    def best_key(e: dict[str, Any]) -> tuple:
        return (not e["success"], e["steps_to_success"] or 10**9, -e["episode_return"])

    def worst_key(e: dict[str, Any]) -> tuple:
        return (not e["success"], e["peak_force_n"] or 0.0, e["steps"])

    return min(episodes, key=best_key), max(episodes, key=worst_key)


#: Title of a "(n distinct)" note beside a success count with its interval.
COUNTED_DISTINCT = "episodes that differ in any outcome field; the interval counts these"


def _distinct_note(distinct: int, episodes: int, title: str, of: bool = False) -> str:
    """" (n distinct)" (with `of`: " (n of N distinct)") where replays leave fewer distinct
    episodes than episodes, else ""."""
    if distinct == episodes:
        return ""
    count = f"{distinct} of {episodes}" if of else f"{distinct}"
    return f' <small title="{title}">({count} distinct)</small>'


def _distinct(task: Any) -> str:
    """A note when replays made the Wilson interval count fewer trials than episodes."""
    return _distinct_note(task.summary["effective_trials"], task.episodes, COUNTED_DISTINCT)


def given_the_goal(entry: Mapping[str, Any]) -> bool:
    """Whether an entry's actions go through the task's hand controller, which steers to the
    goal the task gives it, on tracks whose start offset the observation withholds too (the
    P-controller and residual policies ranked first on families-test without a word)."""
    from agents import agent_names, agent_spec

    agent = entry["policy"].get("agent")
    return agent in agent_names() and getattr(agent_spec(agent).cls,
                                              "acts_through_base_policy", False)


def _given_the_goal(entry: Mapping[str, Any]) -> str:
    """The site's note beside an entry `given_the_goal`."""
    if not given_the_goal(entry):
        return ""
    return (' <small title="its actions go through the task\'s hand controller, which is given '
            'the goal (the socket, or the believed goal) whatever the observation holds">'
            '(given the goal)</small>')


def _replayed(score: EntryScore) -> str:
    """A note when replays made the aggregates' intervals count fewer episodes than there are."""
    return _distinct_note(score.distinct_episodes, score.episodes,
                          "the intervals count the distinct episodes of each task: an episode "
                          "replayed for several seeds is one trial", of=True)


def _noiseless_task(task: Sim2SimTask | None) -> str:
    if task is None or not task.supported:
        return _sim2sim_task(task)  # "-" or "n/a", as in the PyBullet column
    if task.noiseless_successes is None:
        return '<span title="measured at verifications since 2026-12-05">-</span>'
    return f"{task.noiseless_successes}/{task.episodes}" + _distinct_note(
        task.noiseless_distinct, task.episodes, "episodes that differ in any outcome field")


def _sim2sim_task(task: Sim2SimTask | None) -> str:
    if task is None:
        return '<span title="measured when an entry is verified">-</span>'
    if not task.supported:
        return f'<span class="na" title="{_e(task.reason)}">n/a</span>'
    return (f"{task.pybullet_successes}/{task.episodes} "
            f"{_interval(task.pybullet_successes / task.episodes, task.pybullet_ci)}"
            + _distinct_note(task.pybullet_distinct[1], task.episodes, COUNTED_DISTINCT))


def _sim2sim_note(entry: dict[str, Any]) -> str:
    block = entry.get("sim2sim")
    if block is None:
        return ""
    quiet = block.get("noiseless")
    reference = (
        "Its blocks from before 2026-12-05 lack the noiseless MuJoCo reference: there the gap to "
        "PyBullet also holds the sensor variation's share. " if quiet is None else
        f"Noiseless MuJoCo: run {_ran(quiet, quiet['platform'])}, {quiet['wall_clock_s']:.0f} s "
        f"wall, {quiet['cpu_s']:.0f} s CPU. " if quiet["episodes"] else "")
    return (f'<p class="note">PyBullet column: {_e(SIM2SIM_TITLE)}. PyBullet runs the task\'s '
            f'geometry, impedance controller and retention springs but not its version\'s sensor '
            f'variation (F/T noise, drift, reset repeatability), so it is compared with MuJoCo '
            f'run noiseless on the same seeds; n/a: PyBullet cannot run the task (hover for the '
            f'measured reason). {_sim2sim_run(entry)} {block["wall_clock_s"]:.0f} s wall, '
            f'{block["cpu_s"]:.0f} s CPU. {reference}</p>')


def _ran(part: Mapping[str, Any], platform: Mapping[str, str] | None) -> str:
    """'<date> on <cpu>' of a block or part (the date alone where no platform is recorded)."""
    where = "" if platform is None else f" on {platform.get('cpu', '?')}"
    return _e(f"{part['evaluated_at'][:10]}{where}")


def _sim2sim_run(entry: dict[str, Any]) -> str:
    """When, where and on which PyBullet model the entry's block ran: a block rerun since its
    verification (the shipped ones, on 2026-12-06) read as measured at verification, and one of
    an earlier model, whose figures differ, was not marked. A block without a platform of its
    own ran with the hidden evaluation."""
    block, revision = entry["sim2sim"], sim2sim_revision(entry["sim2sim"])
    platform = block.get("platform", entry["evaluations"]["hidden"].get("platform"))
    older = "" if revision == PYBULLET_REVISION or not block["episodes"] else (
        f" (an earlier model than this code's revision {PYBULLET_REVISION}: its figures are "
        "not this model's, and a recheck cannot replay them)")
    return f"PyBullet: run {_ran(block, platform)} with model revision {revision}{older}."


def salt_round_note(ledger: Ledger, entry: dict[str, Any]) -> str:
    """HTML sentence: the salt round of the entry's hidden seeds, and whether anyone can
    recompute them (revealed), not yet (active), or never (lost)."""
    digest = entry["evaluations"]["hidden"]["salt_sha256"]
    r = ledger.entry_round(entry)  # a recorded round: `Ledger.entries` refuses any other
    head = (f"Hidden seeds from {_e(entry['track'])} salt round {r.number} (salt SHA-256 "
            f"<code>{_e(digest)}</code>).")
    if r.status == "lost":
        return (f"{head} <b>The hidden seeds cannot be recomputed</b>: the round's salt was lost "
                f"on {_e((r.closed_at or 'an unrecorded date')[:10])} ({_e(r.note)}). The "
                f"episodes stand as recorded at verification.")
    if r.status == "revealed" and is_stale(entry):  # its command checked another entry
        return (f"{head} The salt was revealed on {_e((r.closed_at or 'an unrecorded date')[:10])}"
                ": anyone can recompute the hidden seeds, but not the episodes, made on other "
                "versions of the track's tasks than today's code runs.")
    if r.status == "revealed":
        return (f"{head} The salt was revealed on {_e((r.closed_at or 'an unrecorded date')[:10])}"
                f": anyone can recompute the hidden seeds and every episode "
                f"(<code>insertbench leaderboard verify {_e(entry['entry_id'][:12])}</code>).")
    return (f"{head} The round is active: its salt stays secret until the maintainers reveal "
            f"it, after which anyone can recompute the hidden seeds.")


def _rounds_line(ledger: Ledger, track: str) -> str:
    """The track's salt rounds in one line for the index."""
    rounds = ledger.salt_rounds(track).read()
    if not rounds:
        return ""
    parts = []
    for r in rounds:
        opened = (r.opened_at or "an unrecorded date")[:10]
        closed = (r.closed_at or "an unrecorded date")[:10]
        when = {"active": f"since {opened}: salt secret until revealed",
                "revealed": f"on {closed}: hidden seeds recomputable",
                "lost": f"on {closed}: hidden seeds not recomputable"}[r.status]
        parts.append(f'<span class="round {r.status}" title="{_e(r.note)}">round {r.number} '
                     f'{r.status} {_e(when)}</span>')
    return f'<p class="note">Salt rounds: {" · ".join(parts)}.</p>'


#: The names a render gives GIFs (the entry id is 64 hex digits).
_GIF_FILE = re.compile(r"^[0-9a-f]{64}-[a-z]+-(best|worst)(-[0-9a-f]+)?\.gif$")


def _gif_name(entry: Mapping[str, Any], evaluation: str, which: str,
              episode: Mapping[str, Any]) -> str:
    """The file of an episode's GIF: the episode's identity is in the name, since a GIF once
    rendered is kept (a re-verified entry's new best episode got the old one's GIF)."""
    what = f"{episode['task']}|{episode['seed']}|{episode['task_version_key']}"
    digest = hashlib.sha256(what.encode()).hexdigest()[:10]
    return f"{entry['entry_id']}-{evaluation}-{which}-{digest}.gif"


def _entry_page(ledger: Ledger, score: EntryScore, out: Path, gifs: bool, stale: bool,
                written: set[Path]) -> str:
    """The entry's page; the GIFs it shows are rendered if missing and added to ``written``."""
    e = score.entry
    block = e["evaluations"][score.evaluation]
    sim = {t.label: t for t in sim2sim_scores(e) or []}
    rows = []
    for t in score.tasks:
        s = t.summary
        limits = {ep["force_limit_n"] for ep in block["episodes"]
                  if ep["task"] == t.label and ep.get("force_limit_n") is not None}
        rows.append(
            f"<tr><td>{_e(t.label)}</td><td>{t.successes}/{t.episodes}{_distinct(t)}</td>"
            f"<td>{_interval(t.rate, t.ci)}</td><td>{_noiseless_task(sim.get(t.label))}</td>"
            f"<td>{_sim2sim_task(sim.get(t.label))}</td>"
            f"<td>{_num(s['cycle_time_s_mean'], 2)}</td>"
            f"<td>{_num(s['peak_force_n_mean'])}</td>"
            f"<td>{', '.join(f'{v:g}' for v in sorted(limits)) or '-'}</td>"
            f"<td>{_num(s['time_above_force_limit_s_mean'], 2)}</td>"
            f"<td>{_num(s.get('time_above_20n_s_mean'), 2)}</td>"
            f"<td>{_num(s['jerk_rms_m_s3_mean'], 2)}</td>"
            f"<td>{_num(1000 * s['path_length_m_mean'], 1)}</td>"
            f"<td><code>{_e(block['task_version_keys'][t.label][:12])}</code></td></tr>")
    media = ""
    if stale:
        media = ('<p class="note">No replays: this entry was evaluated under other task '
                 'versions, which today\'s simulator would not reproduce.</p>')
    elif gifs:
        best, worst = _best_and_worst(block)
        figures = []
        for which, episode in (("best", best), ("worst", worst)):
            gif = out / "media" / _gif_name(e, score.evaluation, which, episode)
            written.add(gif)
            if not gif.exists():
                try:
                    _render_gif(ledger, e, episode, gif)
                except Exception as err:  # noqa: BLE001 - no GL, a renderer crash: skip media
                    figures.append(f'<p class="note">{which} episode: no replay ({_e(err)})</p>')
                    continue
            outcome = (f"success in {episode['time_to_success_s']:.1f} s" if episode["success"]
                       else "failure")
            figures.append(
                f'<figure><img src="../media/{gif.name}" width="256" height="192" '
                f'alt="{which} episode"><figcaption>{which}: {_e(episode["task"])}, seed '
                f'{episode["seed"]}, {outcome}, peak force '
                f'{_num(episode["peak_force_n"])} N</figcaption></figure>')
        media = f'<h2>Best and worst evaluation episodes</h2><div class="media">' \
                f'{"".join(figures)}</div>'
    t = e["training"]
    salt = (f'<li class="salt-round">{salt_round_note(ledger, e)}</li>'
            if score.evaluation == "hidden" else "")
    links = " ".join(f'<a href="{_e(e[k])}">{k.split("_")[0]}</a>'
                     for k in ("paper_url", "code_url") if e.get(k))
    body = (
        f'<p><a href="../index.html">&larr; all tracks</a></p>'
        f'<h1>{_e(e["name"])} {_badge(score, stale)}</h1>'
        f'<p>Track <b>{_e(e["track"])}</b> · method {_e(e["method"])} · authors '
        f'{_e(", ".join(e["authors"]))} · source {_e(e["source"])} {links}</p>'
        f'<p>Scored on the {"hidden" if score.evaluation == "hidden" else "public dev"} seeds: '
        f'mean success {_interval(score.mean, score.mean_ci)}, IQM '
        f'{_interval(score.iqm, score.iqm_ci)} (95% intervals, counting distinct episodes: '
        f'the mean\'s Wilson\'s at an effective sample size, the IQM\'s from the '
        f'per-task rates\' Jeffreys posteriors){_replayed(score)}.</p>'
        f'<h2>Per task</h2><div class="scroll"><table class="board"><thead><tr><th>Task</th>'
        f'<th>Successes</th>'
        f'<th>Success [95% Wilson]</th>'
        f'<th><span title="{_e(NOISELESS_TITLE)}">MuJoCo noiseless</span></th>'
        f'<th><span title="{_e(SIM2SIM_TITLE)}">PyBullet, same seeds</span></th>'
        f'<th>Cycle time [s]</th><th>Peak force [N]</th><th>Force limit [N]</th>'
        f'<th><span title="{_e(FORCE_LIMIT_TITLE)}">Time &gt; limit [s]</span></th>'
        f'<th>Time &gt; {FORCE_LIMIT_N:.0f} N [s]</th><th>Jerk [m/s³]</th>'
        f'<th>Path [mm]</th><th>Version key</th></tr></thead><tbody>{"".join(rows)}</tbody>'
        f'</table></div>{_sim2sim_note(e)}'
        f'<h2>Training cost</h2><p class="note">As the submitter reports it '
        f'(submission.toml): verification re-runs the policy, not its training.</p>'
        f'<ul><li>env steps: {t["env_steps"]:,}</li>'
        f'<li>demonstrations: {t["demos"]}</li><li>intervention steps: '
        f'{t["intervention_steps"]}</li><li>wall-clock: {_num(t["wall_clock_s"], 0, " s")}'
        f'</li><li>hardware: {_e(t["hardware"] or "-")}</li></ul>'
        f'<h2>Metadata</h2><ul><li>entry (SHA-256 of the policy files): '
        f'<code>{e["entry_id"]}</code></li><li>policy: {_e(e["policy"]["kind"])}'
        f'{" (" + _e(e["policy"]["agent"]) + ")" if e["policy"]["agent"] else ""}</li>'
        f'<li>created: {_e(e["created_at"])}; code version {_e(e["code_version"] or "-")}</li>'
        f'<li>evaluated: {_e(block["evaluated_at"])}, {block["episodes_per_task"]} episodes per '
        f'task, {block["wall_clock_s"]:.0f} s wall, {block["cpu_s"]:.0f} s CPU'
        f'{_platform(block.get("platform"))}</li>{salt}</ul>{media}'
        f'<p class="note">Jerk: RMS of the third difference of the TCP position at the policy '
        f'rate (10 Hz), over dt³. Time above the limit: {_e(FORCE_LIMIT_TITLE)}. Time above '
        f'{FORCE_LIMIT_N:.0f} N: the same against a flat {FORCE_LIMIT_N:.0f} N, which version-1 '
        f'insertions cross in normal use (USB-A needs up to 35 N).</p>'
    )
    return _page(f"{e['name']} · InsertBench leaderboard", body, depth=1)


def _write_text(path: Path, text: str) -> None:
    with written_whole(path) as tmp:
        tmp.write_text(text)


def render_site(ledger: Ledger, out: str | Path, gifs: bool = True) -> Path:
    """Write the site for every track into ``out``; returns index.html."""
    out = Path(out)
    entries = ledger.entries()  # a damaged entry stops the render before anything is written
    unknown = sorted({e["track"] for e in entries} - set(TRACKS))
    if unknown:  # its entries would vanish from the site without a word
        raise LedgerError(f"{ledger.root} holds entries of tracks {unknown}, which this version "
                          f"of InsertBench does not have (known: {sorted(TRACKS)})")
    for entry in entries:  # its page said anyone could recompute it, with its policy gone
        stored_policy_paths(ledger, entry)
    # Every salts file read before anything is written: a damaged one stopped the render with
    # the pages of the tracks before it rewritten.
    rounds_lines = {name: _rounds_line(ledger, name) for name in TRACKS}
    (out / "entries").mkdir(parents=True, exist_ok=True)
    for name in ("style.css", "table.js"):
        _write_text(out / name, resources.files("leaderboards").joinpath(f"static/{name}")
                    .read_text())
    written: set[Path] = set()
    sections, nav = [], []
    for track in TRACKS.values():
        tables = track_tables(track, entries)
        labels = track.labels()
        plot = out / "plots" / f"{track.name}.png"
        has_plot = _plot(tables, plot)
        if has_plot:
            written.add(plot)
        for scores, stale in ((tables.verified, False), (tables.self_reported, False),
                              (tables.stale, True)):
            for score in scores:
                page = _entry_page(ledger, score, out, gifs, stale, written)
                _write_text(out / "entries" / page_name(score.entry), page)
                written.add(out / "entries" / page_name(score.entry))
        count = len(tables.verified) + len(tables.self_reported) + len(tables.stale)
        nav.append(f'<a href="#{track.name}">{_e(track.name)} ({count})</a>')
        sections.append(
            f'<section id="{track.name}"><h2>{_e(track.name)}</h2>'
            f'<p>{_e(track.description)}. {track.episodes_per_task} episodes per task. '
            f'<i>{_e(track.budget_rules)}</i></p>'
            f'<p class="note">Track version {TRACK_VERSION}, task version {TASK_VERSION}: '
            f'{", ".join(f"<code>{_e(t.task_id)}</code>" for t in track.tasks[:1])}'
            f'{" ..." if len(track.tasks) > 1 else ""} with '
            f'<code>{_e(dict(track.tasks[0].env_kwargs))}</code>.</p>'
            f'{rounds_lines[track.name]}'
            + (f'<p class="note">Zero-shot: an entry is one policy, trained on '
               f'<code>{_e(track.training_task.task_id)}</code> with '
               f'<code>{_e(dict(track.training_task.env_kwargs))}</code>, that runs every task '
               f'of the track unchanged.</p>' if track.training_task else "")
            + f'<h3>Verified (hidden seeds)</h3>'
            f'{_table(track.name, "verified", tables.verified, labels)}'
            f'<h3>Self-reported (public dev seeds)</h3>'
            f'{_table(track.name, "self-reported", tables.self_reported, labels)}'
            + (f'<h3>Stale (made under other task version keys or an earlier track version; '
               f'not ranked)</h3>'
               f'{_table(track.name, "stale", tables.stale, labels, stale=True)}'
               if tables.stale else "")
            + (f'<img class="plot" src="plots/{track.name}.png" alt="{_e(track.name)}: success '
               f'vs training cost">' if has_plot else "")
            + "</section>")
    body = (
        '<h1>InsertBench leaderboard</h1>'
        '<p>Policies re-run by InsertBench itself. <span class="badge verified">verified'
        '</span> entries were re-evaluated on hidden seeds (derived from a secret salt committed '
        'by SHA-256 and revealed when its round closes; a round whose salt was lost leaves its '
        'entries verified but not recomputable, as each entry page says); '
        '<span class="badge self">self-reported</span> entries on the public dev seeds. '
        'Success: 95% Wilson intervals per task; mean and IQM over tasks with 95% intervals '
        '(the mean\'s Wilson\'s at an effective sample size, the IQM\'s from the '
        'per-task rates\' Jeffreys posteriors); both count an episode '
        'replayed for several seeds once (a '
        'deterministic policy on a noiseless task replays one; "k distinct" where some did); '
        'ranks go down by mean, and an entry whose mean interval overlaps that of its group\'s '
        'first (highest) entry shares its rank (compared unrounded: bounds shown as whole '
        'percents that touch, such as [90, 97] and [97, 100], may not overlap). '
        'P(improvement): probability that the entry beats the best built-in baseline of the '
        'same table. Click a column header to sort.</p>'
        f'<nav>{" · ".join(nav)}</nav>{"".join(sections)}')
    index = out / "index.html"
    _write_text(index, _page("InsertBench leaderboard", body))
    # Only files named as a render names them (an entry id, a track): the user's own files in
    # the folder stay. GIFs only where this render showed them (--no-gifs keeps them for later).
    tracks = "|".join(re.escape(t) for t in TRACKS)
    # An entry page (`page_name`), as named now (<track>-<id>...) or before the track led
    # (<id>...): a user's `review-<id>.html` or `<id>-notes.html` beside them was deleted.
    own = {"entries": re.compile(rf"^(({tracks})-)?[0-9a-f]{{64}}(-track-v[0-9]+)?"
                                 r"(-keys-[0-9a-f]{12})?\.html$"),
           "plots": re.compile(rf"^({tracks})\.png$")}
    if gifs:
        own["media"] = _GIF_FILE
    for folder, pattern in own.items():
        for file in (out / folder).glob("*"):
            if file.is_file() and pattern.match(file.name) and file not in written:
                file.unlink()  # an earlier render's: a deleted entry, a replaced GIF
    return index
