"""Fixtures of the leaderboard tests (see `builders`)."""

from pathlib import Path

import pytest

from leaderboards import scoring
from leaderboards.ledger import Ledger
from tests.leaderboards.builders import tiny_track  # noqa: F401


@pytest.fixture(scope="session")
def shipped() -> tuple[Ledger, list[dict]]:
    """The shipped ledger and its entries, read once: a read validates every entry (~12 s)."""
    ledger = Ledger(Path(__file__).parents[2] / "leaderboards" / "ledger")
    return ledger, ledger.entries()


@pytest.fixture(autouse=True)
def fewer_bootstrap_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """rliable's bootstrap at 200 instead of 2,000 samples: same code, a tenth of the time."""
    monkeypatch.setattr(scoring, "POSTERIOR_DRAWS", 200)
