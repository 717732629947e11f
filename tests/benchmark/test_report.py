"""Reports: Markdown and self-contained HTML with the right numbers in the right rows."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from matrix_helpers import SYNTHETIC, tiny_preset_toml
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.metrics import format_rate
from benchmark.preset import load_preset
from benchmark.testing import synthetic_cell_for_tests
from envs.episode import wilson_interval

REFERENCE = """
[paper_reference]
source = "A made-up paper for the test"
[[paper_reference.entries]]
task = "InsertBench/A-v0"
env_kwargs = { goal_noise_mm = 1.0 }
agent = "Learner"
successes = 13
trials = 20
note = "Table 9, row A"
"""


def test_run_status_and_report_through_the_cli(tmp_path: Path) -> None:
    preset_path = tmp_path / "tiny.toml"
    preset_path.write_text(tiny_preset_toml(fail_seed=1) + REFERENCE, encoding="utf-8")
    preset = load_preset(preset_path)
    store = tmp_path / "tiny.sqlite"
    runner = CliRunner()

    result = runner.invoke(app, ["matrix", "run", str(preset_path), "--store", str(store),
                                 "--executor", "inline", "--cell-fn", SYNTHETIC, "--no-progress"])
    assert result.exit_code == 1, result.output  # failed cells make the exit status non-zero
    assert "4 failed" in result.output

    result = runner.invoke(app, ["matrix", "status", str(preset_path), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "12 done, 0 running, 4 failed, 0 pending of 16" in " ".join(result.output.split())

    out = tmp_path / "report"
    result = runner.invoke(app, ["matrix", "report", str(preset_path), "--store", str(store),
                                 "--out", str(out), "--reps", "200"])
    assert result.exit_code == 0, result.output
    # Its warnings on the console too, not only in a file the user may not open.
    assert "WARNING: 12 of the done cells were produced by a test fixture" in \
        " ".join(result.output.split())
    markdown = (out / "report.md").read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")

    # Success cells pooled over seeds, computed here straight from the fixture.
    for task in ("A-v0 goal_noise_mm=0.0", "B-v0 goal_noise_mm=1.0"):
        for method in ("Scripted", "Learner"):
            cells = [c for c in preset.cells if c.task_label == task and c.method == method
                     and not (method == "Learner" and c.seed == 1)]
            records = [r for c in cells
                       for r in synthetic_cell_for_tests(c, tmp_path).final.episodes]
            k, n = sum(r["success"] for r in records), len(records)
            # The Learner's seed 1 failed: its rate is over 1 of the 2 seeds the preset asks.
            seeds = "1 of 2 seeds" if method == "Learner" else f"{len(cells)} seeds"
            expected = format_rate(k, n, *wilson_interval(k, n)) + f" · {seeds}"
            row = next(line for line in markdown.splitlines() if line.startswith(f"| {task} |"))
            assert expected in row
            assert expected in page
    assert "| A-v0 goal_noise_mm=1.0 | Learner |" in markdown
    reference_row = next(line for line in markdown.splitlines() if "Table 9, row A" in line)
    ours = [r for c in preset.cells if c.task_label == "A-v0 goal_noise_mm=1.0"
            and c.method == "Learner" and c.seed == 0
            for r in synthetic_cell_for_tests(c, tmp_path).final.episodes]
    k = sum(r["success"] for r in ours)
    assert format_rate(k, 6, *wilson_interval(k, 6)) in reference_row
    assert format_rate(13, 20, *wilson_interval(13, 20)) in reference_row
    assert "Table 9, row A" in page
    # Learner's seed 1 failed everywhere: aggregated over its seed 0 alone, beside methods of
    # two seeds, without a word; now left out, as a method with one failed cell is.
    assert "Learner: left out of the aggregates, no finished cell of seed(s) 1." in markdown
    assert not re.search(r"\| Learner \| [0-9.]+", markdown.split("## Aggregates")[1])
    assert "synthetic failure requested for seed 1" in markdown
    assert "WARNING: 12 of the done cells were produced by a test fixture" in markdown

    # Figures: PNG files beside the Markdown, the same images inline in the HTML.
    for name in ("learning_curves.png", "performance_profile.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
        assert f"]({name})" in markdown
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 2
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert not re.search(r"(src|href)=['\"](?!data:)", page), "HTML must be self-contained"
    assert "<link" not in page and "<script" not in page


def _report_figures(tmp_path: Path, monkeypatch, preset: str) -> list:
    """Run `preset` (TOML text) with the synthetic cells, then `matrix report` it; the report's
    figures (performance profile, learning curves), as drawn before they were saved."""
    import benchmark.report as report

    preset_path = tmp_path / "tiny.toml"
    preset_path.write_text(preset, encoding="utf-8")
    store = tmp_path / "tiny.sqlite"
    runner = CliRunner()
    result = runner.invoke(app, ["matrix", "run", str(preset_path), "--store", str(store),
                                 "--executor", "inline", "--cell-fn", SYNTHETIC, "--no-progress"])
    assert result.exit_code == 0, result.output
    figures: list = []
    monkeypatch.setattr(report, "_png", lambda fig: figures.append(fig) or b"")
    result = runner.invoke(app, ["matrix", "report", str(preset_path), "--store", str(store),
                                 "--out", str(tmp_path / "report"), "--reps", "100"])
    assert result.exit_code == 0, result.output
    return figures


def test_figures_share_each_methods_colour_and_draw_budget_0_methods_as_levels(
        tmp_path: Path, monkeypatch) -> None:
    import matplotlib.pyplot as plt

    profile, curves = _report_figures(tmp_path, monkeypatch, tiny_preset_toml(seeds="[0]"))

    def colours(ax) -> dict[str, str]:
        return {line.get_label(): line.get_color() for line in ax.get_lines()}

    in_profile = colours(profile.axes[0])
    assert in_profile["Learner"] != in_profile["Scripted"]
    for ax in [a for a in curves.axes if a.get_title()]:  # one panel per task variant
        in_curves = colours(ax)
        assert in_curves["Learner"] == in_profile["Learner"]
        # a short curve is marked at every evaluation (one point alone was drawn invisibly)
        learner = next(line for line in ax.get_lines() if line.get_label() == "Learner")
        assert learner.get_marker() == "o"
        # the scripted method (budget 0) is a dashed level in its own colour
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert [line.get_label() for line in dashed] == ["Scripted (no online steps)"]
        assert dashed[0].get_color() == in_profile["Scripted"]
    plt.close("all")


def test_labels_are_drawn_as_written_below_the_plots(tmp_path: Path, monkeypatch) -> None:
    """Labels went to matplotlib as math: "$\\nope$" ended the report of a finished matrix,
    "$5 to $^" lost its dollars in the figures alone; the legends inside the axes hid the
    curves of presets with long labels (matrix18)."""
    import matplotlib.pyplot as plt

    learner, scripted = r"Learner ($\nope$)", "Scripted (cost $5 to $^ each)"
    preset = tiny_preset_toml(seeds="[0]").replace('"Learner"', f"'{learner}'").replace(
        '"Scripted"', f"'{scripted}'")
    profile, curves = _report_figures(tmp_path, monkeypatch, preset)
    profile.canvas.draw()  # math is parsed when drawn
    curves.canvas.draw()
    shown = [t.get_text() for t in profile.axes[0].get_legend().get_texts()]
    assert sorted(shown) == sorted([learner, scripted])
    assert not any(t.get_parse_math() for t in profile.axes[0].get_legend().get_texts())
    assert all(ax.get_legend() is None for ax in curves.axes) and len(curves.legends) == 1
    assert learner in [t.get_text() for t in curves.legends[0].get_texts()]
    plt.close("all")


REPLAYS = """
name = "replays"
description = "a scripted method replays its episodes for every training seed"
tasks = ["InsertBench/A-v0", "InsertBench/B-v0", "InsertBench/A-v1", "InsertBench/B-v1"]
seeds = [0, 1, 2]
eval_episodes = 8
eval_seeds = { start = 500 }
eval_every = 100

[[agents]]
name = "scripted_fixture"
label = "Scripted"
budget_steps = 0
config = { synthetic_replay_seeds = true }

[[agents]]
name = "scripted_fixture"
label = "Tuned"
budget_steps = 0
config = { synthetic_replay_seeds = true }
env_kwargs = { goal_noise_mm = 0.5 }

[[agents]]
name = "learner_fixture"
label = "Learner"
budget_steps = 400
"""


@pytest.mark.parametrize("seeds", ["[0, 1, 2]", "[1]"])
def test_failed_cells_are_named_where_their_method_is_counted(tmp_path: Path, monkeypatch,
                                                              seeds: str) -> None:
    """A 3-seed row read "2 seeds" with one failed, and a method whose every cell failed was
    missing from the aggregates without a word."""
    monkeypatch.chdir(tmp_path)
    Path("f.toml").write_text(tiny_preset_toml(seeds=seeds, fail_seed=1), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["matrix", "run", "f.toml", "--store", "f.sqlite",
                                 "--executor", "inline", "--cell-fn", SYNTHETIC,
                                 "--no-progress"])
    assert result.exit_code == 1, result.output  # its failed cells
    result = runner.invoke(app, ["matrix", "report", "f.toml", "--store", "f.sqlite",
                                 "--out", "report", "--reps", "100"])
    assert result.exit_code == 0, result.output
    markdown = Path("report/report.md").read_text(encoding="utf-8")
    if seeds == "[1]":
        assert "Learner: left out of the aggregates, no finished cell." in markdown
    else:
        assert "· 2 of 3 seeds" in markdown and "· 3 seeds" in markdown  # Scripted ran all


def test_different_tasks_at_different_versions_aggregate_together(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """A preset of the NIST board (v0 only) and USB-v1 was split into one aggregate per
    version, as if they were versions of one task: no IQM over the preset's tasks."""
    monkeypatch.chdir(tmp_path)
    toml = REPLAYS.replace('"InsertBench/A-v0", "InsertBench/B-v0", "InsertBench/A-v1", '
                           '"InsertBench/B-v1"', '"InsertBench/A-v0", "InsertBench/B-v1"')
    Path("mixed.toml").write_text(toml, encoding="utf-8")
    runner = CliRunner()
    for command in (["run", "mixed.toml", "--store", "m.sqlite", "--executor", "inline",
                     "--cell-fn", SYNTHETIC, "--no-progress"],
                    ["report", "mixed.toml", "--store", "m.sqlite", "--out", "report",
                     "--reps", "100"]):
        result = runner.invoke(app, ["matrix", *command])
        assert result.exit_code == 0, result.output
    markdown = Path("report/report.md").read_text(encoding="utf-8")
    assert re.search(r"\| Learner \| [0-9.]+ .* \| 3 x 2 \|", markdown), markdown
    assert "One aggregate per task version." not in markdown and "· v1" not in markdown


def test_seeds_that_replay_one_run_count_once_and_versions_aggregate_apart(tmp_path: Path,
                                                                          monkeypatch) -> None:
    """A scripted baseline evaluated on fixed seeds replays the same episodes for every training
    seed: 3 seeds of 8 episodes read 15/24 [43, 79] where the evidence is 5/8 [31, 86], and its
    aggregate read 0.625 [0.625, 0.625]. Task versions were pooled into one aggregate, and an
    agent's own env kwargs were nowhere in the report."""
    monkeypatch.chdir(tmp_path)
    Path("replays.toml").write_text(REPLAYS, encoding="utf-8")
    preset = load_preset(Path("replays.toml"))
    runner = CliRunner()
    result = runner.invoke(app, ["matrix", "run", "replays.toml", "--store", "r.sqlite",
                                 "--executor", "inline", "--cell-fn", SYNTHETIC, "--no-progress"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["matrix", "report", "replays.toml", "--store", "r.sqlite",
                                 "--out", "report", "--reps", "100"])
    assert result.exit_code == 0, result.output
    markdown = Path("report/report.md").read_text(encoding="utf-8")

    cells = [c for c in preset.cells if c.method == "Scripted" and c.task_id.endswith("A-v0")]
    assert len(cells) == 3
    one_seed = synthetic_cell_for_tests(cells[0], tmp_path).final.episodes
    k = sum(r["success"] for r in one_seed)
    low, high = wilson_interval(k, 8)
    row = next(line for line in markdown.splitlines() if line.startswith("| A-v0 |"))
    assert f"{3 * k}/24 ({100 * k / 8:.0f}% [{100 * low:.0f}, {100 * high:.0f}]; 8 distinct) " \
        "· 3 seeds replaying one run" in row
    # The pooled interval counts episodes: the seeds' own spread is beside it.
    learner = [metrics for metrics in (
        synthetic_cell_for_tests(c, tmp_path).final.episodes for c in preset.cells
        if c.method == "Learner" and c.task_id.endswith("A-v1"))]
    rates = sorted(100 * sum(r["success"] for r in episodes) / len(episodes)
                   for episodes in learner)
    row = next(line for line in markdown.splitlines() if line.startswith("| A-v1 |"))
    spread = f"all {rates[0]:.0f}%" if rates[0] == rates[-1] else \
        f"{rates[0]:.0f}–{rates[-1]:.0f}%"
    assert f"· {len(learner)} seeds: {spread}" in row, row
    assert re.search(r"\| Scripted · v0 \| [0-9.]+ \(1 seed: no CI\) \|", markdown)
    assert "Scripted · v0: its seeds replay the same episodes" in markdown
    assert re.search(r"\| Learner · v1 \| [0-9.]+ \[[0-9.]+, [0-9.]+\] \|", markdown)
    assert "One aggregate per task version." in markdown
    assert ("A-v0, B-v0, A-v1, B-v1: the methods ran on different env kwargs: Scripted: "
            "goal_noise_mm default; Tuned: goal_noise_mm=0.5; Learner: goal_noise_mm "
            "default.") in markdown

    # A replaying method whose lowest seed failed on one task kept seed 1 there and seed 0 on
    # the other: a half-empty score matrix, "left out of the aggregates" beside "count as one
    # seed". And a failed cell being run again read "Not started: -1".
    from benchmark.store import Store, collect_provenance

    def a_v0_cell(seed: int):
        return next(c for c in preset.cells if c.method == "Scripted"
                    and c.task_id.endswith("A-v0") and c.seed == seed)

    def fail(cell) -> None:
        with Store("r.sqlite") as store:
            store.record_failed(cell, "boom", "", collect_provenance(), 1.0)

    def report() -> str:
        result = runner.invoke(app, ["matrix", "report", "replays.toml", "--store", "r.sqlite",
                                     "--out", "report", "--reps", "100"])
        assert result.exit_code == 0, result.output
        return Path("report/report.md").read_text(encoding="utf-8")

    first = a_v0_cell(0)
    fail(first)
    markdown = report()
    assert re.search(r"\| Scripted · v0 \| [0-9.]+ \(1 seed: no CI\) \| .* \| 1 x 2 \|",
                     markdown), markdown
    assert "Scripted · v0: left out of the aggregates" not in markdown
    assert "| Failed | 1 |" in markdown and "| Not started | 0 |" in markdown
    with Store("r.sqlite") as store:
        assert store.claim(first)  # a worker retries it
        markdown = report()
        store.release(first.config_hash)
    assert "| Failed | 0 |" in markdown and "| Running | 1 |" in markdown
    assert "| Not started | 0 |" in markdown
    assert "boom" not in markdown  # not under "Failed cells" while it runs
    # Seed 1 failed there too: A-v0's one cell cannot show a replay, and it made the method
    # "left out of the aggregates, 5 of 6 (seed, task) scores present".
    fail(a_v0_cell(1))
    markdown = report()
    assert re.search(r"\| Scripted · v0 \| [0-9.]+ \(1 seed: no CI\) \| .* \| 1 x 2 \|",
                     markdown), markdown


def test_user_text_reads_as_written_in_markdown_and_html() -> None:
    """A label "TD3 <all fail>" was an HTML tag to CommonMark (GitHub showed "TD3"); the HTML
    showed `code spans` with their backticks and an empty header row as a grey bar; the page
    had no viewport (6 px text on a phone)."""
    from benchmark.report import Section, Table, render_html, render_markdown

    sections = [Section("S", ["Preset file: `a<b>.toml`, label TD3 <all fail> & co."],
                        [Table(["Method", "Success"], [["TD3 <all fail>", "1/2"],
                                                       ["Bob's `quote <b>", "0/2"]]),
                         Table(["", ""], [["Done", "3"]])])]
    markdown = render_markdown("T", sections)
    assert "label TD3 \\<all fail> \\& co." in markdown and "`a<b>.toml`" in markdown
    assert "| Bob's \\`quote \\<b> | 0/2 |" in markdown  # a lone backtick opens no span
    assert "| TD3 \\<all fail> | 1/2 |" in markdown
    page = render_html("T", sections)
    assert "<code>a&lt;b&gt;.toml</code>" in page and "TD3 &lt;all fail&gt; &amp; co." in page
    assert "<th></th>" not in page and "name='viewport'" in page


def test_time_to_threshold_counts_a_seed_that_never_reached_it_as_the_slowest() -> None:
    """The median was over the seeds that reached it: 600, never, never, 450 read 525, ahead of
    600, never, 600, 450 (600), a method as fast on every seed that reached it more often."""
    from benchmark.report import median_reach

    assert median_reach([(600, 6.0), None, (600, 5.0), (450, 9.0)]) == (600, 6.0)
    # Half the seeds never reached it: read 600 (the lower median) before.
    assert median_reach([(600, 6.0), None, None, (450, 9.0)]) is None
    assert median_reach([None, None, (450, 9.0)]) is None
    assert median_reach([(300, 3.0)]) == (300, 3.0)
    # One seed's steps and seconds: 500 steps in 40 s and 1,000 in 10 s read "500 in 10.0".
    assert median_reach([(500, 40.0), (1000, 10.0)]) == (1000, 10.0)


def test_cells_evaluated_on_another_task_version_are_flagged(tmp_path: Path) -> None:
    """A cell's hash names its task and kwargs, not what the task does: a store resumed after
    a change of the dynamics reused its old cells, and the report pooled them without a word.
    Their episodes carry the task version key they ran on."""
    from benchmark.metrics import cell_metrics
    from benchmark.report import cells_on_another_task_version
    from envs.version_key import task_version_key

    path = tmp_path / "pc.toml"
    path.write_text('name = "pc"\ndescription = "x"\ntasks = ["InsertBench/USB-v1", '
                    '"InsertBench/DSub-v1"]\nseeds = [0]\neval_episodes = 2\n'
                    'eval_seeds = { start = 100 }\n'
                    '[[agents]]\nname = "p_controller"\nbudget_steps = 0\n', encoding="utf-8")
    preset = load_preset(path)

    def metrics(key: str):
        episode = {"seed": 1, "success": True, "steps_to_success": 9, "time_to_success_s": 0.9,
                   "final_distance_mm": 0.0, "peak_force_n": 5.0, "task_version_key": key}
        return cell_metrics([{"is_final": True, "env_steps": 0, "wall_clock_s": 0.0,
                              "episodes": [episode, {**episode, "seed": 2}]}])

    current = {c.config_hash: metrics(task_version_key(c.task_id, dict(c.env_kwargs)))
               for c in preset.cells}
    assert cells_on_another_task_version(preset, current) == []
    usb = next(c for c in preset.cells if "USB" in c.task_id)
    moved = cells_on_another_task_version(preset, {**current, usb.config_hash: metrics("0" * 64)})
    assert moved == [usb]


def test_a_report_folder_that_cannot_be_made_is_refused_before_the_bootstrap(
        tmp_path: Path, monkeypatch) -> None:
    """`--out /proc/x` (no folder can be made there, even by root) printed a bare
    FileNotFoundError after the bootstrap had run."""
    import benchmark.report as report

    monkeypatch.chdir(tmp_path)
    Path("tiny.toml").write_text(tiny_preset_toml(seeds="[0]"), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["matrix", "run", "tiny.toml", "--executor", "inline",
                                 "--cell-fn", SYNTHETIC, "--no-progress"])
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(report, "write_report", lambda *a, **k: pytest.fail("reached"))
    result = runner.invoke(app, ["matrix", "report", "tiny.toml", "--out", "/proc/nope/r"])
    assert result.exit_code == 2
    assert "/proc/nope/r cannot be created" in " ".join(result.output.split())


def test_a_report_with_no_finished_cell_says_so(tmp_path: Path, monkeypatch) -> None:
    """Every table came out empty with nothing saying why (only the status table's Done 0)."""
    from benchmark.report import build_sections
    from benchmark.store import Store

    monkeypatch.chdir(tmp_path)
    Path("replays.toml").write_text(REPLAYS, encoding="utf-8")
    with Store("empty.sqlite") as store:
        sections = build_sections(load_preset(Path("replays.toml")), store, reps=10)
    success = next(s for s in sections if s.title == "Final success rate")
    assert any("No cell of this preset has finished yet" in p for p in success.paragraphs)


def test_scattered_evaluation_seeds_are_not_shown_as_a_range() -> None:
    """[1000000, 1000007, 1000003, 2000000] read "1000000…2000000": a million seeds, not 4."""
    from benchmark.report import _seed_list

    assert _seed_list(range(1000, 1050)) == "1000…1049 (50)"
    assert _seed_list([1000000, 1000007, 1000003, 2000000]) == "1000000, 1000007, 1000003, 2000000"
    assert _seed_list(list(range(0, 40, 3))) == "0, 3, 6, …, 39 (14)"


def test_an_aggregate_interval_of_no_width_is_not_printed_as_a_measurement() -> None:
    """Two seeds of 0/5 each read "0.000 [0.000, 0.000]" beside the success table's
    "0/10 (0% [0, 28])": resampling equal scores cannot vary, which is no precision."""
    from benchmark.report import _with_interval

    assert _with_interval(0.0, (0.0, 0.0), 2, agree=True) == \
        "0.000 (2 seeds agree on every task: no CI)"
    assert _with_interval(0.5, (0.25, 0.75), 2) == "0.500 [0.250, 0.750]"
    # An IQM that trims the seeds that differ has an interval of no width; they do not agree,
    # and "1.000 [1.000, 1.000]" read as exact beside the table's "10/10 (100% [72, 100])".
    assert _with_interval(0.5, (0.5, 0.5), 10) == \
        "0.500 (no CI: every resample trims the scores that differ)"
    assert _with_interval(0.5, (0.5, 0.5), 1) == "0.500 (1 seed: no CI)"


def test_seeds_curves_average_their_own_evaluations_not_interpolated_ones() -> None:
    """Seeds evaluated at 102/243/300 and 105/204/300 were interpolated onto all six steps and
    drawn with a marker at 204: a mean of 0.138 that no evaluation gave."""
    from benchmark.metrics import CurvePoint
    from benchmark.report import seeds_curve

    first = [CurvePoint(102, 1.0, 4, 4), CurvePoint(243, 2.0, 0, 4), CurvePoint(300, 3.0, 2, 4)]
    second = [CurvePoint(105, 1.0, 4, 4), CurvePoint(204, 2.0, 0, 4), CurvePoint(300, 3.0, 4, 4)]
    aligned, steps, rates = seeds_curve([first, second])
    assert aligned and steps.tolist() == [103.5, 223.5, 300.0]
    assert rates.tolist() == [[1.0, 0.0, 0.5], [1.0, 0.0, 1.0]]
    aligned, steps, _ = seeds_curve([first, second[:2]])  # unequal counts: interpolated
    assert not aligned and steps.tolist() == [102, 105, 204, 243, 300]


@pytest.mark.parametrize("count", [3, 10, 12, 20, 21, 40])
def test_every_method_of_a_report_has_its_own_colour(count):
    """The colours cycled after 10: paper000-leaderboard's 12 methods drew P-controller and
    SAC in one blue, Straight down and TD3 in one orange (matrix20)."""
    from benchmark.report import method_colours

    methods = [f"method {i}" for i in range(count)]
    colours = method_colours(methods)
    assert list(colours) == methods and len(set(colours.values())) == count
    if count <= 10:  # matplotlib's own cycle, as before
        assert colours["method 0"] == "#1f77b4"
