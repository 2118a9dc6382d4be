"""Helpers for Harness tools written in Python and built with componentize-py.

The tool's WIT world declares its functions; componentize-py generates the `wit_world`
bindings from it, and the tool defines `class WitWorld(wit_world.WitWorld)` with one method per
exported function. This module wraps the host interfaces the world imports:

    import harness_tool
    from harness_tool import kv, log

    who = harness_tool.caller()              # principal, roles, run_id; has_role("support")
    count = kv.get_json("count", int) or 0   # private durable storage, as JSON
    kv.set_json("count", count + 1)
    log.info(f"{who.principal} counted {count + 1}")

Helpers raise `HarnessError`, whose message names the key that failed; decorate a method with
`@harness_tool.errors(MyError_Storage)` to return it to the agent as the WIT error case instead.
"""

import dataclasses
import enum
import functools
import json
import typing

from componentize_py_types import Err


class HarnessError(Exception):
    """A host call failed; the message says which key and why."""


def errors(case: typing.Callable[[str], typing.Any]):
    """Turns `HarnessError`s raised by the decorated method into `Err(case(message))`, the tool's
    own WIT error (for example `TicketError_Storage`)."""

    def wrap(method):
        @functools.wraps(method)
        def wrapped(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except HarnessError as error:
                raise Err(case(str(error))) from error

        return wrapped

    return wrap


class Caller:
    """Who the current call runs for: `principal`, `roles` and `run_id`."""

    def __init__(self, info):
        self.principal: str = info.principal
        self.roles: typing.List[str] = list(info.roles)
        self.run_id: str = info.run_id

    def has_role(self, role: str) -> bool:
        """Whether the host granted `role` to the caller."""
        return role in self.roles


def caller() -> Caller:
    """The caller of the call in progress (the world must import `harness:tool/caller`)."""
    from wit_world.imports import caller as host

    return Caller(host.current())


class log:
    """Lines for the host's audit trail (the world must import `harness:tool/log`)."""

    @staticmethod
    def _write(level_name: str, message: str) -> None:
        from wit_world.imports import log as host

        host.write(getattr(host.Level, level_name), message)

    @staticmethod
    def debug(message: str) -> None:
        """Records a debug line."""
        log._write("DEBUG", message)

    @staticmethod
    def info(message: str) -> None:
        """Records an informational line."""
        log._write("INFO", message)

    @staticmethod
    def warn(message: str) -> None:
        """Records a warning."""
        log._write("WARN", message)

    @staticmethod
    def error(message: str) -> None:
        """Records an error line."""
        log._write("ERROR", message)


_KV_MESSAGES = {
    "Error_QuotaExceeded": "the tool's storage quota is used up",
    "Error_TooManyKeys": "the tool holds its maximum number of keys",
    "Error_TooLarge": "the key or value is larger than the grant allows",
    "Error_Denied": "the tool has no key-value grant",
}


class kv:
    """The tool's private key-value storage (the world must import `harness:tool/kv`)."""

    @staticmethod
    def _call(key: str, operation: str, *args):
        from wit_world.imports import kv as host

        try:
            return getattr(host, operation)(*args)
        except Err as error:
            name = type(error.value).__name__
            why = _KV_MESSAGES.get(name) or f"storage unavailable: {getattr(error.value, 'value', name)}"
            raise HarnessError(f"storage of {key!r}: {why}") from None

    @staticmethod
    def get(key: str) -> typing.Optional[bytes]:
        """The bytes stored under `key`, if any."""
        return kv._call(key, "get", key)

    @staticmethod
    def set(key: str, value: bytes) -> None:
        """Stores `value` under `key`."""
        kv._call(key, "set", key, value)

    @staticmethod
    def delete(key: str) -> bool:
        """Removes `key`; returns whether it existed."""
        return kv._call(key, "delete", key)

    @staticmethod
    def keys(prefix: str) -> typing.List[str]:
        """The keys starting with `prefix`, in byte order."""
        return kv._call(prefix, "keys", prefix)

    @staticmethod
    def get_json(key: str, kind=None):
        """The JSON stored under `key`, decoded into `kind` (a WIT record, enum, list...) if given."""
        raw = kv.get(key)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return data if kind is None else from_plain(kind, data)
        except (ValueError, KeyError, TypeError) as error:
            raise HarnessError(f"JSON of key {key!r}: {error}") from None

    @staticmethod
    def set_json(key: str, value) -> None:
        """Stores `value` (plain data or generated WIT types) under `key` as JSON."""
        kv.set(key, json.dumps(to_plain(value)).encode())


def to_plain(value):
    """Generated WIT values (dataclasses, enums, lists, options) as JSON-ready data."""
    if dataclasses.is_dataclass(value):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def from_plain(kind, data):
    """The inverse of `to_plain`, guided by the generated type `kind`."""
    origin = typing.get_origin(kind)
    if origin is typing.Union:
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return None if data is None else from_plain(options[0], data)
    if origin in (list, typing.List):
        (item,) = typing.get_args(kind)
        return [from_plain(item, v) for v in data]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind[data.upper()]
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: from_plain(hints[f.name], data[f.name]) for f in dataclasses.fields(kind)})
    return data
