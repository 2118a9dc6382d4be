"""One real ``harness serve`` for the client's tests, over the repository's example tools
(built from source with ``harness build``) and scripted agents."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harness_client.testing import HarnessServer, build_tool

REPO = Path(__file__).resolve().parents[3]

APP = "hk_app-key-for-client-tests"
DESK = "hk_desk-key-for-client-tests"
OPS = "hk_ops-key-for-client-tests"
VIEWER = "hk_viewer-key-for-client-tests"

SCRIPTS = {
    "math": [
        '{"calls": [{"name": "calc__apply", "arguments": {"op": "mul", "a": 6, "b": 7}}]}',
        '{"text": "6 × 7 = 42"}',
    ],
    "clerk": [
        '{"calls": [{"name": "tickets__create", "arguments": {"title": "VPN down", "body": "", "priority": "urgent"}}]}',
        '{"text": "Ticket 1 is open."}',
    ],
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("harness")
    tools = {
        name: build_tool(REPO / "tools" / name, tmp / f"{name}.wasm", REPO / "target" / "guest")
        for name in ("calc", "tickets")
    }
    lines = [
        "[host]",
        f'cache_dir = "{tmp / "cache"}"',
        f'data_dir = "{tmp / "data"}"',
        "",
        "[tools.calc]",
        f'component = "{tools["calc"]}"',
        f'sha256 = "{sha256(tools["calc"].read_bytes())}"',
        "",
        "[tools.tickets]",
        f'component = "{tools["tickets"]}"',
        f'sha256 = "{sha256(tools["tickets"].read_bytes())}"',
        'kv = { quota = "64 KiB" }',
        'roles = ["support"]',
        'approval = { when = { priority = ["urgent"] } }',
        "",
    ]
    for agent, script in SCRIPTS.items():
        path = tmp / f"{agent}.jsonl"
        path.write_text("\n".join(script) + "\n")
        lines += [
            f"[models.{agent}-script]",
            'provider = "scripted"',
            f'script = "{path}"',
            "",
            f"[agents.{agent}]",
            f'model = "{agent}-script"',
            "",
        ]
    clients = {
        "app": (APP, '["support", "approver"]', "act_for = true"),
        "desk": (DESK, '["support"]', ""),
        "ops": (OPS, '["operator"]', ""),
        "viewer": (VIEWER, "[]", ""),
    }
    for name, (key, roles, extra) in clients.items():
        lines += [
            f"[clients.{name}]",
            f'key_sha256 = "{sha256(key.encode())}"',
            f"roles = {roles}",
            extra,
            "",
        ]
    policy = tmp / "harness.toml"
    policy.write_text("\n".join(lines))
    with HarnessServer(policy) as served:
        yield served
