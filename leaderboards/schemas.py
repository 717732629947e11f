"""The ledger's JSON schemas (`leaderboards/schema/`), each read and checked once, and what a
document does not satisfy in one of them: the error `jsonschema.validate` raises (the best
match), found with a validator built once. `jsonschema.validate` checked the schema again for
each document and looked each episode's definition up anew: reading the shipped ledger took
12.3 s, 4.9 s with the validators kept (78 entries, 2026-12-06)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema


@functools.cache
def validator(resource: str) -> Any:
    """A validator of the schema at ``resource`` (under the package), the schema checked once
    and its local references written out (`_inlined`)."""
    schema = json.loads(resources.files("leaderboards").joinpath(resource).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(_inlined(schema, schema.get("$defs", {})),
               format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def problem(resource: str, document: Any) -> str | None:
    """Where and how ``document`` breaks the schema at ``resource`` ("at PATH: MESSAGE"), or
    None when it satisfies it."""
    err = jsonschema.exceptions.best_match(validator(resource).iter_errors(document))
    if err is None:
        return None
    where = "/".join(str(p) for p in err.absolute_path) or "(top)"
    return f"at {where}: {err.message}"


def _inlined(node: Any, defs: Mapping[str, Any], within: tuple[str, ...] = ()) -> Any:
    """``node`` with every bare ``{"$ref": "#/$defs/NAME"}`` replaced by that definition (a
    definition within itself is left a reference, which the kept ``$defs`` resolve)."""
    if isinstance(node, dict):
        ref = node.get("$ref") if len(node) == 1 else None
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in defs and name not in within:
                return _inlined(defs[name], defs, (*within, name))
        return {k: _inlined(v, defs, within) for k, v in node.items()}
    if isinstance(node, list):
        return [_inlined(v, defs, within) for v in node]
    return node
