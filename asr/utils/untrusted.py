"""Reading values that came from elsewhere (a model file's metadata, an exported folder, a checkpoint) as data.

Strict JSON only (no ``NaN``/``Infinity``, which Python's json module accepts by default), and the plain
value types a config may hold. Every problem is a ``ValueError`` whose message starts with ``where`` (the
file and the key), so an entry point can print it as one line.
"""
from __future__ import annotations

import json
from typing import Any

SCALARS = (str, int, float, bool, type(None))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str, where: str) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and anything else outside the JSON standard.

    Raises:
        ValueError: ``where: not valid JSON (...)``.
    """
    if not isinstance(text, str):
        raise ValueError(f"{where}: expected a JSON string, got {type(text).__name__}")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as e:  # JSONDecodeError is a ValueError, and so is the refusal above
        message = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
        raise ValueError(f"{where}: not valid JSON ({message})") from None


def is_scalar_or_list(value: Any) -> bool:
    """True for a string, number, boolean, null, or a list of those (the values a config keyword may take)."""
    if isinstance(value, list):
        return all(isinstance(v, SCALARS) for v in value)
    return isinstance(value, SCALARS)


def check_fields(d: Any, fields: dict[str, tuple[type, ...]], where: str, required: tuple[str, ...] = ()) -> dict:
    """Check a JSON object against a field table: known keys only, the right types, required keys present.

    Args:
        d: the parsed value.
        fields: key -> accepted Python types (``int`` also accepts nothing else; ``float`` accepts ints).
        where: the file and key, for messages.
        required: keys that must be present.

    Returns:
        ``d`` itself.
    """
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
    if unknown := sorted(set(d) - set(fields)):
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    if missing := [k for k in required if k not in d]:
        raise ValueError(f"{where}: missing key(s) {missing}")
    for key, value in d.items():
        types = fields[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            names = " or ".join(t.__name__ for t in types)
            raise ValueError(f"{where}: key {key!r} must be {names}, got {type(value).__name__}")
    return d
