"""Drives a Harness MCP server with the official MCP Python SDK and prints what it saw as JSON.

Usage: client.py ACTIONS_JSON TARGET...
  ACTIONS_JSON: a list of actions, each ["list"], ["call", NAME, ARGUMENTS],
    ["run", [PROGRAM, ARG...]] (a command run meanwhile, such as `harness kill`), or
    ["await_list_changed", SECONDS] (whether `notifications/tools/list_changed` came in time)
  TARGET: an `http://…/mcp` URL, or a program and its arguments (spawned, spoken to on stdio)
Options through the environment: HARNESS_MCP_MODE (auto, legacy, 2026-07-28),
HARNESS_MCP_KEY (a Bearer key for HTTP), HARNESS_MCP_CONFIRM (accept, decline or cancel: the
client declares form elicitation and its user answers every question so, each question seen as
{"asked": MESSAGE}; unset: no elicitation capability).

The Rust end-to-end tests run it and assert on its output; it asserts nothing itself.
"""

import asyncio
import json
import os
import sys

from mcp import Client
from mcp.client.stdio import StdioServerParameters


def target(spec):
    if not spec[0].startswith("http"):
        return StdioServerParameters(command=spec[0], args=spec[1:], env=dict(os.environ))
    spec = spec[0]
    key = os.environ.get("HARNESS_MCP_KEY")
    if key is None:
        return spec
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    return streamable_http_client(
        spec, http_client=httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"})
    )


def tool_json(tool):
    annotations = tool.annotations
    return {
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "input_schema": tool.input_schema,
        "output_schema": tool.output_schema,
        "annotations": None
        if annotations is None
        else {
            "title": annotations.title,
            "read_only": annotations.read_only_hint,
            "destructive": annotations.destructive_hint,
            "open_world": annotations.open_world_hint,
        },
    }


async def main(spec, actions):
    seen = []
    mode = os.environ.get("HARNESS_MCP_MODE", "auto")
    changed = asyncio.Event()

    async def on_message(message):
        if type(message).__name__ == "ToolListChangedNotification" or "tools/list_changed" in repr(
            message
        ):
            changed.set()

    answer = os.environ.get("HARNESS_MCP_CONFIRM")

    async def on_elicit(context, params):
        from mcp import types

        seen.append({"asked": params.message})
        return types.ElicitResult(action=answer, content={} if answer == "accept" else None)

    options = {"elicitation_callback": on_elicit} if answer else {}
    async with Client(
        target(spec), mode=mode, message_handler=on_message, **options
    ) as client:
        for action in actions:
            if action[0] == "run":
                process = await asyncio.create_subprocess_exec(
                    *action[1], stdout=asyncio.subprocess.DEVNULL
                )
                seen.append({"exit": await process.wait()})
                continue
            if action[0] == "await_list_changed":
                try:
                    await asyncio.wait_for(changed.wait(), action[1])
                    seen.append({"list_changed": True})
                except asyncio.TimeoutError:
                    seen.append({"list_changed": False})
                changed.clear()
                continue
            if action[0] == "list":
                listed = await client.list_tools()
                seen.append({"tools": [tool_json(t) for t in listed.tools]})
            elif action[0] == "call":
                try:
                    result = await client.call_tool(action[1], action[2])
                    seen.append(
                        {
                            "is_error": bool(result.is_error),
                            "structured": result.structured_content,
                            "text": " ".join(
                                getattr(c, "text", "") for c in result.content
                            ),
                        }
                    )
                except Exception as error:  # noqa: BLE001 - the test reads the message
                    seen.append({"exception": str(error)})
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[2:], json.loads(sys.argv[1])))
