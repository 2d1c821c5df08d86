"""Stripe's form encoding (pure): `metadata[key]=v`, `enabled_events[]=a`, `lines[0][amount]=1`,
decoded into nested dicts and lists, and the typed readers the handlers validate params with.

Every problem is a `SandboxError(400, …)` worded as Stripe words it (`parameter_unknown`,
`parameter_missing`, `parameter_invalid_integer`…), with `param` in `fields[0]`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from sandbox.core.protocol import SandboxError

_NAME = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
MAX_METADATA_KEYS = 50


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> SandboxError:
    """A parameter refused before the endpoint executes (so an idempotency key saves nothing)."""
    return SandboxError(
        400, code or "", message, fields=[param] if param else [], extra={"validation": True}
    )


def form_decode(text: str) -> dict[str, Any]:
    """A form-encoded string as nested params; raises invalid_request_error on a bad name."""
    root: dict[str, Any] = {}
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:  # pragma: no cover - parse_qsl is lenient unless strict
        raise invalid(f"Invalid request body: {exc}") from exc
    for name, value in pairs:
        match = _NAME.match(name)
        if match is None:
            raise invalid(f"Invalid parameter name: {name}", param=name)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        _assign(root, path, value, name)
    return _lists(root)


def _assign(node: dict, path: list[str], value: str, name: str) -> None:
    for segment in path[:-1]:
        key = segment if segment != "" else str(len(node))
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise invalid(f"Invalid hash or array for {name}: conflicting values", param=name)
        node = child
    last = path[-1] if path[-1] != "" else str(len(node))
    if isinstance(node.get(last), dict):
        raise invalid(f"Invalid value for {name}: expected a hash or array", param=name)
    node[last] = value


def _lists(node: Any) -> Any:
    """Dicts whose keys are all 0..n-1 (from `x[]` or `x[0]`) become lists."""
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def params_unknown_check(params: dict[str, Any], allowed: set[str], prefix: str = "") -> None:
    for key in params:
        if key not in allowed:
            name = f"{prefix}[{key}]" if prefix else key
            raise invalid(
                f"Received unknown parameter: {name}", param=name, code="parameter_unknown"
            )


def missing(name: str) -> SandboxError:
    return invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")


def read_str(params: dict, name: str, *, required: bool = False, max_length: int = 5000):
    value = params.get(name)
    if value is None:
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {name} must be a string", param=name)
    if value == "" and required:
        raise invalid(
            f"You passed an empty string for '{name}'. We assume empty values are an attempt to "
            f"unset a parameter; however '{name}' cannot be unset.",
            param=name,
            code="parameter_invalid_empty",
        )
    if len(value) > max_length:
        raise invalid(f"Invalid {name}: must be at most {max_length} characters", param=name)
    return value


def read_int(
    params: dict,
    name: str,
    *,
    required: bool = False,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid(f"Invalid integer: {value}", param=name, code="parameter_invalid_integer")
    number = int(value)
    if minimum is not None and number < minimum:
        raise invalid(
            f"This value must be greater than or equal to {minimum}.",
            param=name,
            code="parameter_invalid_integer",
        )
    if maximum is not None and number > maximum:
        raise invalid(
            f"This value must be less than or equal to {maximum}.",
            param=name,
            code="parameter_invalid_integer",
        )
    return number


def read_bool(params: dict, name: str) -> bool | None:
    value = params.get(name)
    if value is None:
        return None
    if value not in {"true", "false"}:
        raise invalid(f"Invalid boolean: {value}", param=name)
    return value == "true"


def read_enum(params: dict, name: str, choices: tuple[str, ...]) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if value not in choices:
        raise invalid(f"Invalid {name}: must be one of {', '.join(choices)}", param=name)
    return value


def read_metadata(params: dict, current: dict[str, str] | None = None) -> dict[str, str] | None:
    """Merge `metadata[k]=v` into `current`; an empty value unsets a key, `metadata=` clears all."""
    value = params.get("metadata")
    if value is None:
        return None
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid hash: metadata must be a hash", param="metadata")
    merged = dict(current or {})
    for key, item in value.items():
        if not isinstance(item, str):
            raise invalid(f"Invalid value for metadata[{key}]", param=f"metadata[{key}]")
        if len(key) > 40 or len(item) > 500:
            raise invalid(
                "Metadata keys are at most 40 characters and values at most 500.",
                param=f"metadata[{key}]",
            )
        if item == "":
            merged.pop(key, None)
        else:
            merged[key] = item
    if len(merged) > MAX_METADATA_KEYS:
        raise invalid("You can have at most 50 metadata keys.", param="metadata")
    return merged


def read_hash(params: dict, name: str, allowed: set[str]) -> dict[str, str] | None:
    value = params.get(name)
    if value is None:
        return None
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid hash: {name} must be a hash", param=name)
    params_unknown_check(value, allowed, prefix=name)
    for key, item in value.items():
        if not isinstance(item, str):
            raise invalid(f"Invalid value for {name}[{key}]", param=f"{name}[{key}]")
    return dict(value)


def read_list(params: dict, name: str) -> list[str] | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value] if value else []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid(f"Invalid array: {name} must be an array of strings", param=name)
    return value
