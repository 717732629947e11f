"""Fixtures of the leaderboard tests (see `builders`)."""

from tests.leaderboards.builders import tiny_track  # noqa: F401
