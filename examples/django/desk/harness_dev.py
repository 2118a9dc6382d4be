"""A whitelist for developing and testing this app against a real Harness: the repository's
`kb` and `tickets` example tools (built from source with `harness build`), a `support` agent
that answers from the knowledge base and a `clerk` agent that opens tickets once a staff member
approves, both on scripted models, and this app's client entry (`act_for = true`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness_client.testing import build_tool

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def write_whitelist(directory: Path, key: str) -> Path:
    """Writes `harness.toml` into ``directory`` for a client with ``key``; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    tools = {
        name: build_tool(REPO / "tools" / name, directory / f"{name}.wasm", REPO / "target" / "guest")
        for name in ("kb", "tickets")
    }

    def pinned(name: str) -> list[str]:
        digest = hashlib.sha256(tools[name].read_bytes()).hexdigest()
        return [f"[tools.{name}]", f'component = "{tools[name]}"', f'sha256 = "{digest}"']

    lines = [
        "[host]",
        f'cache_dir = "{directory / "cache"}"',
        f'data_dir = "{directory / "data"}"',
        "",
        *pinned("kb"),
        f'fs = [{{ host = "{REPO / "tools" / "kb" / "sample"}", guest = "/kb", mode = "ro" }}]',
        "",
        *pinned("tickets"),
        'kv = { quota = "1 MiB" }',
        'roles = ["support"]',
        'approval = "required"',
        "",
    ]
    for agent in ("support", "clerk"):
        lines += [
            f"[models.{agent}-script]",
            'provider = "scripted"',
            f'script = "{HERE / "harness" / f"{agent}.jsonl"}"',
            "",
            f"[agents.{agent}]",
            f'model = "{agent}-script"',
            'system = "You are the IT support assistant of the support desk."',
            "",
        ]
    lines += [
        "[budgets]",
        'user_tokens = "50000/day"',
        "",
        "[clients.supportdesk]",
        f'key_sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"',
        'roles = ["support", "approver"]',
        "act_for = true",
        "",
    ]
    policy = directory / "harness.toml"
    policy.write_text("\n".join(lines))
    return policy
