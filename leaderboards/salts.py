"""Salt rounds: the hidden-seed salts of a track, one round after another.

A track's hidden seeds come from a secret salt kept outside the repository; the ledger holds
only its SHA-256 until the salt is revealed. A salt can also be lost (the machine that kept it
was reset), and a revealed salt makes its seeds public, so a track goes through *rounds*:
``salts/<track>.json`` holds them in order (schema ``salts-v2.json``)::

    {"schema": "insertbench-leaderboard-salts/2", "track": "paper000", "rounds": [
      {"salt_sha256": "...", "salt_hex": null, "status": "lost",
       "opened_at": null, "closed_at": "2026-12-02T01:10:00Z", "note": "machine reset ..."},
      {"salt_sha256": "...", "salt_hex": null, "status": "active",
       "opened_at": "2026-12-02T01:12:00Z", "closed_at": null, "note": ""}]}

Status: ``active`` (at most one, the last round: new verifications use it), ``revealed``
(``salt_hex`` published: anyone can recompute the round's hidden seeds) or ``lost`` (the salt is
gone: the entries verified under it keep their recorded episodes, which nobody can recompute).
A round is identified by its salt's SHA-256, which every hidden evaluation records.

Each round also lists the evaluations that `leaderboard verify` wrote under it (``verified``:
entry id -> the `verification_sha256` of every hidden and sim-to-sim block it wrote for that
entry), so that a block is "verified" only if a maintainer's run wrote it: one written by hand
into an entry file (its episodes made up, on seeds of a lost round or of a revealed one) passed
every check. Rounds written before the list existed have none (``verified`` absent: only the
seed checks apply) until the first verification under them lists their entries' blocks.

Schema 1 (before rounds) was one commitment ``{"salt_sha256", "salt_hex"}``; it is read as one
round (active, or revealed if ``salt_hex`` is set) with unrecorded dates, and written back as
schema 2 at the next change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from envs.json_files import write_json
from leaderboards.files import utc_now
from leaderboards.schemas import problem as schema_problem
from leaderboards.submission import text_problem

SALTS_SCHEMA = "insertbench-leaderboard-salts/2"
#: The note of a round read from a schema-1 file.
MIGRATED_NOTE = "salt committed before salt rounds were recorded (salts schema 1); opening " \
    "date not recorded"


class SaltError(ValueError):
    """A salt-round operation that cannot be done (no active round, wrong salt, ...)."""


def salt_sha256(salt: bytes) -> str:
    return hashlib.sha256(salt).hexdigest()


#: The fewest distinct byte values a new round's salt must hold.
MIN_SALT_DISTINCT_BYTES = 6


def guessable_salt(salt: bytes) -> str | None:
    """Why ``salt`` looks guessable, or None: fewer than `MIN_SALT_DISTINCT_BYTES` distinct
    bytes, one byte making up over half of it, or a short block repeated ("passwordpassword").
    16 repeated bytes opened a round whose hidden seeds could be guessed. A heuristic against
    such salts, not a measure of entropy (a passphrase passes); random salts pass (16 random
    hex digits hold fewer than 6 distinct in 3 of 100,000 draws)."""
    distinct = len(set(salt))
    if distinct < MIN_SALT_DISTINCT_BYTES:
        return f"it holds {distinct} distinct byte values (fewer than {MIN_SALT_DISTINCT_BYTES})"
    commonest = max(salt.count(b) for b in set(salt))
    if 2 * commonest > len(salt):
        return f"one byte makes up {commonest} of its {len(salt)}"
    period = next((p for p in range(1, len(salt) // 2 + 1)
                   if salt[p:] == salt[:-p]), None)
    if period is not None:
        return f"it repeats a block of {period} bytes"
    return None


@dataclass(frozen=True)
class SaltRound:
    """One salt round of a track (see the module docstring)."""

    number: int  # 1-based position in the track's list (shown on the site)
    salt_sha256: str
    salt_hex: str | None
    status: Literal["active", "revealed", "lost"]
    opened_at: str | None
    closed_at: str | None
    note: str
    verified: dict[str, list[str]] | None = None

    def salt(self) -> bytes | None:
        """The published salt (revealed rounds), else None."""
        return None if self.salt_hex is None else bytes.fromhex(self.salt_hex)

    def to_dict(self) -> dict[str, Any]:
        return {"salt_sha256": self.salt_sha256, "salt_hex": self.salt_hex,
                "status": self.status, "opened_at": self.opened_at,
                "closed_at": self.closed_at, "note": self.note,
                **({} if self.verified is None else {"verified": dict(sorted(
                    self.verified.items()))})}


def verification_sha256(entry: Mapping[str, Any]) -> str:
    """SHA-256 of what `verify` writes into an entry, its hidden evaluation and sim-to-sim
    blocks, as canonical JSON (key order and whitespace do not count; every number does)."""
    blocks = {"hidden": entry["evaluations"].get("hidden"), "sim2sim": entry.get("sim2sim")}
    text = json.dumps(blocks, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def migrate(data: Mapping[str, Any], track: str) -> dict[str, Any]:
    """Schema-1 data (one commitment) as schema 2; schema-2 data unchanged."""
    if "schema" in data:
        return dict(data)
    revealed = data.get("salt_hex") is not None
    return {"schema": SALTS_SCHEMA, "track": track, "rounds": [{
        "salt_sha256": data.get("salt_sha256"), "salt_hex": data.get("salt_hex"),
        "status": "revealed" if revealed else "active", "opened_at": None,
        "closed_at": None, "note": MIGRATED_NOTE}]}


def parse(data: Mapping[str, Any], track: str) -> list[SaltRound]:
    """The rounds in ``data`` (either schema), validated; SaltError says what is wrong."""
    data = migrate(data, track)
    wrong = schema_problem("schema/salts-v2.json", data)
    if wrong is not None:
        raise SaltError(f"salts of {track} do not match the salts schema {wrong}")
    if data["track"] != track:
        raise SaltError(f"the salts file of {track} names track {data['track']!r}")
    rounds = [SaltRound(number=i + 1, **r) for i, r in enumerate(data["rounds"])]
    for r in rounds:
        try:  # as written (a note, "; lost: " and a reason): a hand-edited file's too
            check_note(r.note, f"{track} salt round {r.number}'s note", STORED_NOTE_LIMIT)
        except SaltError as err:
            raise SaltError(f"{err}; the site shows it") from None
        if (r.status == "revealed") != (r.salt_hex is not None):
            raise SaltError(f"{track} salt round {r.number}: salt_hex is set exactly when the "
                            "round is revealed")
        if r.salt_hex is not None and salt_sha256(bytes.fromhex(r.salt_hex)) != r.salt_sha256:
            raise SaltError(f"{track} salt round {r.number}: the revealed salt does not hash to "
                            "its committed SHA-256")
        if r.status != "active" and r.closed_at is None and r.note != MIGRATED_NOTE:
            raise SaltError(f"{track} salt round {r.number} is {r.status} but has no closed_at")
    if any(r.status == "active" for r in rounds[:-1]):
        raise SaltError(f"{track}: only the last salt round may be active")
    digests = [r.salt_sha256 for r in rounds]
    if len(set(digests)) != len(digests):
        raise SaltError(f"{track}: two salt rounds share a salt")
    return rounds


def dump(rounds: list[SaltRound], track: str) -> dict[str, Any]:
    """Schema-2 data of ``rounds`` (validated by `parse` before it is returned)."""
    data = {"schema": SALTS_SCHEMA, "track": track, "rounds": [r.to_dict() for r in rounds]}
    parse(data, track)
    return data


#: The most characters a round's note or a lost round's reason may have (the site shows them),
#: and a stored note (a note, "; lost: " and a reason).
NOTE_LIMIT = 500
STORED_NOTE_LIMIT = 2 * NOTE_LIMIT + len("; lost: ")


def check_note(text: str, what: str, limit: int = NOTE_LIMIT) -> str:
    """``text`` if it is at most ``limit`` characters without control characters: a round's
    note and a lost round's reason went unchecked onto the site and the terminal (an escape
    sequence, a bidi override, 100,000 characters), where an entry's text is refused."""
    problem = text_problem(text, limit)  # an entry's text's checks
    if problem is not None:
        raise SaltError(f"{what} {problem}")
    return text


class SaltRounds:
    """The salt rounds of one track, read from and written to ``salts/<track>.json``."""

    def __init__(self, path: Path, track: str):
        self.path, self.track = Path(path), track

    def read(self) -> list[SaltRound]:
        """Every round, oldest first ([] before the first)."""
        if not self.path.is_file():
            return []
        try:
            data = json.loads(self.path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
            raise SaltError(f"{self.path} is not valid JSON: {err}") from None
        return parse(data, self.track)

    def active(self) -> SaltRound | None:
        return _active(self.read())

    def by_digest(self, digest: str) -> SaltRound | None:
        """The round whose salt has SHA-256 ``digest`` (an entry's ``salt_sha256``)."""
        return _by_digest(self.read(), digest)

    def require_active(self, salt: bytes) -> SaltRound:
        """The active round, which ``salt`` must be; SaltError naming the mismatch otherwise."""
        return self._require_active(self.read(), salt)

    def open(self, salt: bytes, note: str = "") -> SaltRound:
        """Start a new active round with ``salt``; refused while a round is active."""
        note = check_note(" ".join(note.split()), "the round's note (--note)")
        rounds = self.read()
        active = _active(rounds)
        if active is not None:
            raise SaltError(f"{self.track} salt round {active.number} is still active; reveal it "
                            f"(`reveal`) or declare it lost (`lose-round`) first")
        weak = guessable_salt(salt)
        if weak is not None:
            raise SaltError(f"this salt looks guessable ({weak}): its hidden seeds could be "
                            "guessed; generate one with `openssl rand -hex 32`")
        digest = salt_sha256(salt)
        # Every track's rounds: a salt revealed on one track (or active there) would make
        # another track's active round's hidden seeds public.
        every_track = {self.track: rounds} | {
            path.stem: SaltRounds(path, path.stem).read()
            for path in sorted(self.path.parent.glob("*.json"))
            if path != self.path and not path.name.startswith(".")}  # a writer's temporary
        for track, track_rounds in every_track.items():
            used = _by_digest(track_rounds, digest)
            if used is not None:
                raise SaltError(f"this salt was already {track}'s round {used.number} "
                                f"({used.status}); generate a new one (`openssl rand -hex 32`)")
        new = SaltRound(len(rounds) + 1, digest, None, "active", utc_now(), None, note, {})
        self._write([*rounds, new])
        return new

    def record_verified(self, salt: bytes, entry: Mapping[str, Any],
                        earlier: Mapping[str, list[str]]) -> None:
        """List what `verify` writes into ``entry`` under the active round, which ``salt`` must
        be, beside what it wrote before (kept: a verification cut off before its entry was
        written leaves the entry's previous blocks, still listed). A round without a list yet
        (opened before lists) starts one with ``earlier``: its entries' blocks as they are."""
        rounds = self.read()
        active = self._require_active(rounds, salt)
        listed = {k: list(v) for k, v in (active.verified if active.verified is not None
                                          else earlier).items()}
        digest = verification_sha256(entry)
        if digest not in listed.setdefault(entry["entry_id"], []):
            listed[entry["entry_id"]].append(digest)
        self._write([*rounds[:-1], dataclasses.replace(active, verified=listed)])

    def reveal(self, salt: bytes) -> SaltRound:
        """Publish the active round's salt (checked against its SHA-256); the round closes."""
        rounds = self.read()
        active = self._require_active(rounds, salt)
        done = dataclasses.replace(active, salt_hex=salt.hex(), status="revealed",
                                   closed_at=utc_now())
        self._write([*rounds[:-1], done])
        return done

    def lose(self, reason: str) -> SaltRound:
        """Declare the active round's salt lost, saying why; the round closes."""
        reason = check_note(" ".join(reason.split()), "the reason (--reason)")
        if not reason:
            raise SaltError("say why the salt is lost (--reason)")
        rounds = self.read()
        active = _active(rounds)
        if active is None:
            raise SaltError(f"{self.track} has no active salt round to declare lost")
        note = f"{active.note}; lost: {reason}" if active.note else f"lost: {reason}"
        done = dataclasses.replace(active, status="lost", closed_at=utc_now(), note=note)
        self._write([*rounds[:-1], done])
        return done

    def _require_active(self, rounds: list[SaltRound], salt: bytes) -> SaltRound:
        digest = salt_sha256(salt)
        active = _active(rounds)
        if active is not None and active.salt_sha256 == digest:
            return active
        mine = _by_digest(rounds, digest)
        if mine is not None:
            raise SaltError(f"this salt is {self.track}'s round {mine.number}, which is "
                            f"{mine.status}, not the active round")
        if active is None:
            raise SaltError(f"{self.track} has no active salt round; open one with `insertbench "
                            f"leaderboard open-round --track {self.track} --salt-file FILE`")
        raise SaltError(f"this salt's SHA-256 is not the one committed for {self.track}'s "
                        f"active round {active.number}")

    def _write(self, rounds: list[SaltRound]) -> None:
        write_json(self.path, dump(rounds, self.track))


def _active(rounds: list[SaltRound]) -> SaltRound | None:
    """The last round if it is active (only the last may be)."""
    return rounds[-1] if rounds and rounds[-1].status == "active" else None


def _by_digest(rounds: list[SaltRound], digest: str) -> SaltRound | None:
    return next((r for r in rounds if r.salt_sha256 == digest), None)
