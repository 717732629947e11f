"""The rooms' layering (DESIGN.md, STYLE.md): `envs` and `agents` at the bottom, `real` on
`envs` (and the agents whose policies it runs), no import running back up. `benchmark` and
`leaderboards` compose the others and each other (the CLI mounts the leaderboard's commands,
the leaderboard reuses the store and the evaluation). Read from the source, so imports inside
functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("envs", "agents", "real", "benchmark", "leaderboards")
#: The rooms each room must not import.
FORBIDDEN = {
    "envs": {"agents", "real", "benchmark", "leaderboards"},
    "agents": {"envs", "real", "benchmark", "leaderboards"},
    "real": {"benchmark", "leaderboards"},
    "benchmark": set(),
    "leaderboards": set(),
}


def imported_rooms(path: Path) -> dict[str, int]:
    """The rooms a module imports, each with the first line that does."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            room = name.split(".")[0]
            if room in ROOMS:
                found.setdefault(room, node.lineno)
    return found


@pytest.mark.parametrize("room", ROOMS)
def test_no_import_runs_back_up(room):
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {other}"
             for path in sorted((ROOT / room).rglob("*.py"))
             for other, line in imported_rooms(path).items() if other in FORBIDDEN[room]]
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from benchmark.cells import SEED_LIMIT\n"
                      "    import envs.tasks\n")
    assert imported_rooms(module) == {"benchmark": 2, "envs": 3}


def test_the_cli_starts_without_torch():
    """Every `insertbench` command paid for torch at start (1.5-2 s) once `benchmark.preset`
    and the real-robot CLI imported a constant from `agents`; only training needs it."""
    import subprocess
    import sys

    code = ("import sys, benchmark.cli, benchmark.real_cli; from agents.registry import "
            "SEED_LIMIT\nassert benchmark.real_cli.SEED_MAX == SEED_LIMIT - 1")
    probe = ("import sys, benchmark.cli; print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, cwd=ROOT).stdout.strip() == "False"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
