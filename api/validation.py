"""Request validation, declared once per body and reused for the OpenAPI document.

A `Body` lists its `Field`s; `Body.parse` turns raw request bytes into a checked dict
or raises the `engine.errors` class that api/errors.py maps to the surface's status:
malformed JSON, a non-object body, missing or unknown fields -> InvalidInput (400);
a field of the wrong type or an impossible value -> InvalidField (422 on the scheduler
surface, 400 on the scripts surface).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from api.limits import (
    MAX_INTEGER,
    MIN_INTEGER,
    check_integer,
    check_json,
    check_text,
)
from engine.errors import InvalidField, InvalidInput
from engine.ids import is_object_id

#: ids a scripts-surface client may choose: one URL path segment, no spaces
SCRIPT_JOB_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,199}$"
SCRIPT_JOB_ID = re.compile(SCRIPT_JOB_ID_PATTERN)
#: users', servers' and executions' ids (and generated job ids)
OBJECT_ID_PATTERN = r"^[0-9a-f]{24}$"
EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "strings": "a list of strings",
    "array": "a list",
    "object": "an object",
    "cron": "a string (or an integer)",
}
_JSON_SCHEMA: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "strings": {"type": "array", "items": {"type": "string"}},
    "array": {"type": "array"},
    "object": {"type": "object"},
    "cron": {"type": "string"},
}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    #: one of _TYPE_WORDS' keys
    kind: str
    required: bool = False
    description: str = ""
    example: Any = None
    max_length: int = 1000  # strings, and lists' and objects' item count
    allow_empty: bool = False  # strings only
    #: integers and numbers; integers are always held to the signed 64-bit range too
    minimum: int | None = None
    maximum: int | None = None
    #: an explicit null is kept (None: "remove it" on an update) instead of dropped
    nullable: bool = False
    #: characters of each item of a "strings" list (an argv string: Linux takes at
    #: most 128 KiB, 32,768 characters of up to 4 UTF-8 bytes)
    item_length: int = 32_768

    def check(self, value: Any) -> Any:
        """The value, normalised (cron integers become strings), or InvalidField."""
        if not _has_kind(self.kind, value):
            raise InvalidField(self.name, f"{self.name} must be {_TYPE_WORDS[self.kind]}")
        if self.kind == "cron":
            value = check_text(self.name, str(value).strip())
            if not value:
                raise InvalidField(self.name, f"{self.name} must not be empty")
            if len(value) > self.max_length:
                raise InvalidField(
                    self.name, f"{self.name} is longer than {self.max_length} characters"
                )
        if self.kind == "string":
            check_text(self.name, value)
            if not self.allow_empty and not value.strip():
                raise InvalidField(self.name, f"{self.name} must not be empty")
            if len(value) > self.max_length:
                raise InvalidField(
                    self.name, f"{self.name} is longer than {self.max_length} characters"
                )
        if self.kind in ("strings", "array", "object") and len(value) > self.max_length:
            raise InvalidField(self.name, f"{self.name} has more than {self.max_length} items")
        if self.kind == "strings":
            for index, item in enumerate(value):
                check_text(f"{self.name}[{index}]", item)
                if len(item) > self.item_length:
                    raise InvalidField(
                        self.name,
                        f"{self.name}[{index}] is longer than {self.item_length} characters",
                    )
        if self.kind in ("array", "object"):
            check_json(self.name, value)
        if self.kind == "integer":
            check_integer(self.name, value)
        if self.kind in ("integer", "number"):
            if self.minimum is not None and value < self.minimum:
                raise InvalidField(self.name, f"{self.name} must be at least {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise InvalidField(self.name, f"{self.name} must be at most {self.maximum}")
        return value

    def schema(self) -> dict[str, Any]:
        schema = dict(_JSON_SCHEMA[self.kind])
        if self.description:
            schema["description"] = self.description
        if self.example is not None:
            schema["example"] = self.example
        if self.kind == "integer":
            schema["format"] = "int64"
            schema["minimum"] = MIN_INTEGER
            schema["maximum"] = MAX_INTEGER
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.nullable:
            schema["nullable"] = True
        if self.kind in ("string", "cron"):
            schema["maxLength"] = self.max_length
            if not self.allow_empty:
                schema["minLength"] = 1
        if self.kind in ("strings", "array"):
            schema["maxItems"] = self.max_length
        if self.kind == "strings":
            schema["items"] = {"type": "string", "maxLength": self.item_length}
        if self.kind == "object":
            schema["maxProperties"] = self.max_length
        return schema


def _has_kind(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "cron":
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    raise ValueError(f"unknown field kind {kind!r}")


def _field_list(names: list[str], *, always_plural: bool) -> str:
    word = "fields" if always_plural or len(names) != 1 else "field"
    return f"{word}: {', '.join(names)}"


@dataclass(frozen=True, slots=True)
class Body:
    """The fields one endpoint accepts in its JSON object body."""

    fields: tuple[Field, ...]
    #: the scripts document always says "Missing required fields: ..."
    always_plural: bool = False

    def parse(self, raw: bytes | None, *, partial: bool = False) -> dict[str, Any]:
        """Checked values of the fields sent (required ones enforced unless `partial`)."""
        data = parse_object(raw)
        known = {f.name for f in self.fields}
        unknown = [name for name in data if name not in known]
        if unknown:
            raise InvalidInput(
                f"Unknown {_field_list(unknown, always_plural=self.always_plural)}"
                f" (accepted: {', '.join(f.name for f in self.fields)})"
            )
        if not partial:
            missing = [f.name for f in self.fields if f.required and data.get(f.name) is None]
            if missing:
                raise InvalidInput(
                    f"Missing required {_field_list(missing, always_plural=self.always_plural)}"
                )
        elif not data:
            raise InvalidInput(
                f"Nothing to update: send at least one of {', '.join(f.name for f in self.fields)}"
            )
        values: dict[str, Any] = {}
        for f in self.fields:
            if f.name in data:
                if data[f.name] is None and not f.required:
                    if f.nullable:
                        values[f.name] = None  # kept: on an update it removes the value
                    continue  # an explicit null means "not given" for optional fields
                values[f.name] = f.check(data[f.name])
        return values

    def schema(self, *, partial: bool = False) -> dict[str, Any]:
        # an explicit null means "not given" for optional fields, so they are nullable
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                f.name: f.schema() if f.required else {**f.schema(), "nullable": True}
                for f in self.fields
            },
            "additionalProperties": False,
        }
        required = [f.name for f in self.fields if f.required]
        if required and not partial:
            schema["required"] = required
        return schema

    def example(self) -> dict[str, Any]:
        return {f.name: f.example for f in self.fields if f.example is not None}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: built once (json.loads with parse_constant builds one per call); parse_object
#: decodes the bytes as json.loads would, then parses with it
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_object(raw: bytes | None) -> dict[str, Any]:
    """A JSON object from a request body, or InvalidInput saying what is wrong with it."""
    if not raw or not raw.strip():
        raise InvalidInput("Request body must be a JSON object (the body is empty)")
    try:
        data = _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"Invalid JSON body: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Invalid JSON body: {exc}") from None
    except RecursionError:
        raise InvalidInput("Invalid JSON body: nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidInput(
            f"Request body must be a JSON object, not {type(data).__name__ if data is not None else 'null'}"
        )
    return data


def object_id(value: str, what: str) -> str:
    """A 24-hex id from a path or query, or InvalidInput (`Invalid user id: ...`)."""
    if not is_object_id(value):
        raise InvalidInput(f"Invalid {what} id: {value!r} (expected 24 hexadecimal characters)")
    return value


def any_job_id(value: str) -> str:
    """A job id on the scheduler surface: generated (24-hex) or chosen on the scripts
    surface. Anything neither could be is malformed (400); a well-formed unknown id
    is left for the lookup to answer 404."""
    if is_object_id(value) or SCRIPT_JOB_ID.match(value):
        return value
    raise InvalidInput(
        f"Invalid job id: {value!r} (expected a 24-hex id or a scripts-surface job_id)"
    )


def check_email(value: str, field: str = "email") -> str:
    cleaned = value.strip()
    if len(cleaned) > 254 or not EMAIL.match(cleaned):
        raise InvalidField(field, f"{field} is not a valid email address: {value!r}")
    return cleaned


@dataclass(frozen=True, slots=True)
class QueryParam:
    name: str
    kind: str  # "string", "integer", "object_id", "job_id"
    description: str = ""
    default: int | None = None
    minimum: int | None = None
    maximum: int | None = None

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer" if self.kind == "integer" else "string"}
        for key in ("default", "minimum", "maximum"):
            if getattr(self, key) is not None:
                schema[key] = getattr(self, key)
        if self.kind == "object_id":
            schema["pattern"] = OBJECT_ID_PATTERN
        return schema


def parse_query(args: dict[str, list[str]], params: tuple[QueryParam, ...]) -> dict[str, Any]:
    """Checked query values; unknown parameters are refused so a typo never widens a
    filter, and so are blank ones (pass `request.get_args(keep_blank_values=True)`:
    Sanic's `request.args` drops them before they can be refused)."""
    known = {p.name: p for p in params}
    unknown = [name for name in args if name not in known]
    if unknown:
        raise InvalidInput(
            f"Unknown query parameter: {', '.join(unknown)} (accepted: {', '.join(known)})"
        )
    values: dict[str, Any] = {}
    for param in params:
        # dict.get gives every value sent; Sanic's overridden args.get only the first
        given = dict.get(args, param.name)
        if not given:
            if param.default is not None:
                values[param.name] = param.default
            continue
        if len(given) > 1:
            raise InvalidInput(f"Query parameter {param.name} given more than once")
        if not given[0]:
            # `?user_id=` from an unset shell variable must not widen a filter to all
            raise InvalidInput(
                f"Query parameter {param.name} is empty (leave it out to not filter by it)"
            )
        values[param.name] = _query_value(param, given[0])
    return values


def _query_value(param: QueryParam, text: str) -> Any:
    if param.kind == "object_id":
        return object_id(text, param.name.removesuffix("_id"))
    if param.kind == "job_id":
        return any_job_id(text)
    if param.kind != "integer":
        return text
    try:
        number = int(text)
    except ValueError:
        raise InvalidInput(f"{param.name} must be a whole number, not {text!r}") from None
    if param.minimum is not None and number < param.minimum:
        raise InvalidInput(f"{param.name} must be at least {param.minimum}")
    if param.maximum is not None and number > param.maximum:
        raise InvalidInput(f"{param.name} must be at most {param.maximum}")
    return number
