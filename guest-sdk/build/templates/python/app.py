"""The {{name}} tool: each method of WitWorld is a function of the WIT world's."""

import wit_world
from componentize_py_types import Err

from harness_tool import log


class WitWorld(wit_world.WitWorld):
    def greet(self, name: str) -> str:
        """Greets `name`; raising Err(...) returns the WIT `result`'s error."""
        if not name.strip():
            raise Err("the name is empty")
        log.info(f"greeting {name}")
        return f"Hello, {name}!"
