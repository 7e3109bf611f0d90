"""Typed options from a pipeline file's table: one check of the keys for every table."""

from __future__ import annotations

import dataclasses

from wsgcn_cli.errors import WsgcnError


def from_table(cls, table: dict, name: str):
    """``cls(**table)`` for the dataclass ``cls`` of the ``[name]`` table.

    Raises WsgcnError (one line naming the table, the unknown keys and the known ones) for
    keys that are not fields of ``cls``. Values are checked by the caller.
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise WsgcnError(f"unknown [{name}] option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**table)
