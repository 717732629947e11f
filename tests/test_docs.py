"""The user-facing docs run as written.

Every ```bash and ```python block of README.md and of the other Markdown docs (`DOCS`) is run, in
document order, in one fresh temporary working directory per document, with the paths the doc
uses (relative ones stay relative), as a user would paste them. `insertbench`, `python` and
`pytest` resolve to the executables of the environment running this suite, and the code is this
checkout's. A block is changed for the test only by markers written in the doc itself, each an
HTML comment on its own line right above the block:

    <!-- test: replace "--steps 5000" with "--steps 200" -->  the text must occur in the block
    <!-- test: skip: REASON -->                                 not run, REASON shown in the skip

so the doc states how it is shortened. Every fenced block declares its language; other languages
(`text`, `toml`, `json`) are not run. A marker that is malformed, replaces nothing or stands
above no block fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUN_LANGUAGES = {"bash", "python"}
OTHER_LANGUAGES = {"text", "toml", "json"}
SKIP_DIRS = {"tests", "runs", "outputs", "node_modules", "build", "dist"}  # and hidden folders
BLOCK_TIMEOUT_S = 300

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*test:(.*)-->\s*$")
_REPLACE = re.compile(r'^\s*replace\s+"(.*?)"\s+with\s+"(.*?)"\s*$')
_SKIP = re.compile(r"^\s*skip:\s*(\S.*?)\s*$")


def user_docs() -> list[Path]:
    """README.md first, then every other Markdown file of the checkout outside SKIP_DIRS."""
    others = sorted(
        p for p in REPO.rglob("*.md")
        if p != REPO / "README.md"
        and not any(part in SKIP_DIRS or part.startswith(".") or part.endswith(".egg-info")
                    for part in p.relative_to(REPO).parts[:-1])
    )
    return [REPO / "README.md", *others]


@dataclass
class Block:
    """One fenced block: where it starts, its language, code as written, and its markers."""

    doc: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    replacements: list[tuple[str, str]] = field(default_factory=list)
    skip_reason: str | None = None

    @property
    def name(self) -> str:
        path = self.doc.relative_to(REPO) if self.doc.is_relative_to(REPO) else self.doc.name
        return f"{path}:{self.line}"

    def code_for_test(self) -> str:
        code = self.code
        for old, new in self.replacements:
            if old not in code:
                raise AssertionError(f"{self.name}: marker replaces {old!r}, not in the block")
            code = code.replace(old, new)
        return code


def parse_blocks(doc: Path) -> list[Block]:
    """The fenced blocks of `doc` with the test markers right above each."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    markers: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        marker = _MARKER.match(lines[i])
        fence = _FENCE.match(lines[i])
        if marker:
            markers.append((i + 1, marker.group(1)))
            i += 1
            continue
        if markers and not fence:
            raise AssertionError(f"{doc.name}:{markers[0][0]}: test marker above no code block")
        if fence:
            language = fence.group(1)
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
            if end is None:
                raise AssertionError(f"{doc.name}:{i + 1}: unclosed code block")
            if language not in RUN_LANGUAGES | OTHER_LANGUAGES:
                raise AssertionError(
                    f"{doc.name}:{i + 1}: a code block must declare one of "
                    f"{sorted(RUN_LANGUAGES | OTHER_LANGUAGES)}, got {language!r}"
                )
            block = Block(doc, i + 1, language, "\n".join(lines[i + 1 : end]) + "\n")
            for line_number, text in markers:
                if m := _REPLACE.match(text):
                    block.replacements.append((m.group(1), m.group(2)))
                elif m := _SKIP.match(text):
                    block.skip_reason = m.group(1)
                else:
                    raise AssertionError(f"{doc.name}:{line_number}: unknown test marker {text!r}")
            if markers and language not in RUN_LANGUAGES:
                raise AssertionError(f"{block.name}: test markers on a block that is not run")
            markers = []
            if language in RUN_LANGUAGES:
                blocks.append(block)
            i = end + 1
            continue
        i += 1
    if markers:
        raise AssertionError(f"{doc.name}:{markers[0][0]}: test marker above no code block")
    return blocks


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)  # insertbench, python, pytest of this environment
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("MINARI_DATASETS_PATH", None)  # a doc that needs it must say so
    env.setdefault("MUJOCO_GL", "egl")
    return env


class DocRun:
    """Runs one doc's blocks in order in its own working directory, each at most once."""

    def __init__(self, blocks: list[Block], workdir: Path) -> None:
        self.blocks = blocks
        self.workdir = workdir
        self.outcome: dict[int, str | None] = {}  # index -> None (passed/skipped) or error text

    def run_through(self, index: int) -> str | None:
        """Run blocks 0..index not run yet; the error of block `index`, or of an earlier one."""
        for i in range(index + 1):
            if i not in self.outcome:
                self.outcome[i] = self._run(self.blocks[i])
            if self.outcome[i] is not None:
                return self.outcome[i] if i == index else f"{self.blocks[i].name} failed first"
        return None

    def _run(self, block: Block) -> str | None:
        if block.skip_reason is not None:
            return None
        code = block.code_for_test()
        command = (["bash", "-e", "-o", "pipefail", "-c", code] if block.language == "bash"
                   else [sys.executable, "-c", code])
        try:
            done = subprocess.run(command, cwd=self.workdir, env=_environment(), text=True,
                                  capture_output=True, timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return f"{block.name}: still running after {BLOCK_TIMEOUT_S} s"
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-4000:]
            return f"{block.name} exited {done.returncode}:\n{code}\n--- output ---\n{output}"
        return None


DOC_BLOCKS = [(doc, i) for doc in user_docs() for i in range(len(parse_blocks(doc)))]


@pytest.fixture(scope="module")
def doc_runs(tmp_path_factory) -> dict[Path, DocRun]:
    return {doc: DocRun(parse_blocks(doc), tmp_path_factory.mktemp(doc.stem))
            for doc in user_docs()}


@pytest.mark.parametrize(
    ("doc", "index"), DOC_BLOCKS,
    ids=[parse_blocks(doc)[i].name for doc, i in DOC_BLOCKS],
)
def test_doc_block_runs_as_written(doc_runs, doc, index):
    run = doc_runs[doc]
    block = run.blocks[index]
    if block.skip_reason is not None:
        pytest.skip(f"{block.name}: {block.skip_reason}")
    error = run.run_through(index)
    assert error is None, error


def test_readme_blocks_are_found():
    blocks = parse_blocks(REPO / "README.md")
    assert sum(b.language == "bash" for b in blocks) >= 5
    assert sum(b.language == "python" for b in blocks) >= 2


def test_markers_are_checked(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text('<!-- test: replace "a" with "b" -->\n```bash\necho x\n```\n')
    (block,) = parse_blocks(doc)
    with pytest.raises(AssertionError, match="not in the block"):
        block.code_for_test()
    doc.write_text("<!-- test: skip: CI runs it -->\n\nSome text\n")
    with pytest.raises(AssertionError, match="above no code block"):
        parse_blocks(doc)
    doc.write_text("<!-- test: shorten it -->\n```bash\necho x\n```\n")
    with pytest.raises(AssertionError, match="unknown test marker"):
        parse_blocks(doc)
    doc.write_text("```\nls\n```\n")
    with pytest.raises(AssertionError, match="must declare"):
        parse_blocks(doc)
