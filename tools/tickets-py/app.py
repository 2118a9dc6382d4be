"""The tickets tool in Python: the Rust tool's twin, built from the same WIT world
(`wit` links to `../tickets/wit`), so agents see the same functions, schemas and
descriptions."""

import wit_world
from wit_world import Priority, Status, Ticket, TicketError_Invalid, TicketError_NotAllowed
from wit_world import TicketError_NotFound, TicketError_Storage
from componentize_py_types import Err

import harness_tool
from harness_tool import kv, log

MAX_TITLE = 200
MAX_BODY = 16 * 1024
SUPPORT_ROLE = "support"


def key(id: int) -> str:
    """The storage key of ticket `id`; zero-padded so that key order is id order."""
    return f"ticket/{id:08}"


class WitWorld(wit_world.WitWorld):
    @harness_tool.errors(TicketError_Storage)
    def create(self, title: str, body: str, priority: Priority) -> Ticket:
        title = title.strip()
        if not title:
            raise Err(TicketError_Invalid("the title is empty"))
        if len(title) > MAX_TITLE:
            raise Err(TicketError_Invalid(f"the title is over {MAX_TITLE} characters"))
        if len(body.encode()) > MAX_BODY:
            raise Err(TicketError_Invalid(f"the body is over {MAX_BODY} bytes"))
        who = harness_tool.caller()
        id = (kv.get_json("next-id", int) or 0) + 1
        ticket = Ticket(id, title, body, priority, Status.OPEN, who.principal, who.run_id)
        kv.set_json(key(id), ticket)
        kv.set_json("next-id", id)
        log.info(f"ticket {id} opened by {who.principal}")
        return ticket

    @harness_tool.errors(TicketError_Storage)
    def get(self, id: int) -> Ticket:
        ticket = kv.get_json(key(id), Ticket)
        if ticket is None:
            raise Err(TicketError_NotFound(id))
        return ticket

    @harness_tool.errors(TicketError_Storage)
    def list(self, status: Status | None) -> list[Ticket]:
        tickets = (kv.get_json(k, Ticket) for k in reversed(kv.keys("ticket/")))
        return [t for t in tickets if t is not None and status in (None, t.status)]

    @harness_tool.errors(TicketError_Storage)
    def resolve(self, id: int) -> Ticket:
        ticket = self.get(id)
        who = harness_tool.caller()
        if ticket.opened_by != who.principal and not who.has_role(SUPPORT_ROLE):
            raise Err(
                TicketError_NotAllowed(
                    f"{who.principal} did not open ticket {id} and lacks the {SUPPORT_ROLE} role"
                )
            )
        ticket.status = Status.CLOSED
        kv.set_json(key(id), ticket)
        log.info(f"ticket {id} closed by {who.principal}")
        return ticket
