"""Native unit tests of harness_tool, with stand-ins for the modules componentize-py generates.

Run: python3 -m unittest discover guest-sdk/python
"""

import dataclasses
import enum
import sys
import types
import typing
import unittest


@dataclasses.dataclass(frozen=True)
class Err(Exception):
    value: typing.Any


sys.modules["componentize_py_types"] = types.SimpleNamespace(Err=Err)

import harness_tool  # noqa: E402  (needs the stand-in above)


class Priority(enum.Enum):
    LOW = 0
    URGENT = 1


@dataclasses.dataclass
class Ticket:
    id: int
    priority: Priority
    tags: typing.List[str]
    parent: typing.Optional[int]


@dataclasses.dataclass
class Error_QuotaExceeded:
    pass


@dataclasses.dataclass
class Error_Unavailable:
    value: str


class FakeKv:
    """The generated `wit_world.imports.kv`, over a dict, failing on request."""

    def __init__(self):
        self.data = {}
        self.fail_with = None

    def get(self, key):
        if self.fail_with:
            raise Err(self.fail_with)
        return self.data.get(key)

    def set(self, key, value):
        if self.fail_with:
            raise Err(self.fail_with)
        self.data[key] = value


class HarnessToolTest(unittest.TestCase):
    def setUp(self):
        self.kv = FakeKv()
        imports = types.ModuleType("wit_world.imports")
        imports.kv = self.kv
        world = types.ModuleType("wit_world")
        world.imports = imports
        sys.modules["wit_world"] = world
        sys.modules["wit_world.imports"] = imports

    def test_wit_values_round_trip_through_json(self):
        ticket = Ticket(7, Priority.URGENT, ["vpn"], None)
        harness_tool.kv.set_json("ticket/7", ticket)
        self.assertEqual(
            self.kv.data["ticket/7"],
            b'{"id": 7, "priority": "urgent", "tags": ["vpn"], "parent": null}',
        )
        self.assertEqual(harness_tool.kv.get_json("ticket/7", Ticket), ticket)
        self.assertIsNone(harness_tool.kv.get_json("ticket/8", Ticket))

    def test_bad_json_names_the_key(self):
        self.kv.data["ticket/9"] = b'{"id": 9}'
        with self.assertRaisesRegex(harness_tool.HarnessError, "JSON of key 'ticket/9'"):
            harness_tool.kv.get_json("ticket/9", Ticket)

    def test_storage_errors_name_the_key_and_become_the_tools_error(self):
        self.kv.fail_with = Error_QuotaExceeded()
        with self.assertRaisesRegex(
            harness_tool.HarnessError, "storage of 'next-id': the tool's storage quota is used up"
        ):
            harness_tool.kv.get("next-id")
        self.kv.fail_with = Error_Unavailable("disk full")

        @harness_tool.errors(lambda message: ("storage", message))
        def create():
            harness_tool.kv.set("next-id", b"1")

        with self.assertRaises(Err) as raised:
            create()
        self.assertEqual(
            raised.exception.value, ("storage", "storage of 'next-id': storage unavailable: disk full")
        )


if __name__ == "__main__":
    unittest.main()
