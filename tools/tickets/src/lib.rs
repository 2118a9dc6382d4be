//! The tickets tool: tickets as JSON in the tool's key-value namespace, under
//! `ticket/<8-digit id>` so that key order is id order, with the last id under `next-id`.

/// Longest accepted title, in characters.
const MAX_TITLE: usize = 200;
/// Longest accepted body, in bytes.
const MAX_BODY: usize = 16 * 1024;
/// The role that may close anyone's ticket.
const SUPPORT_ROLE: &str = "support";

#[harness_guest::tool(derive = [serde::Serialize, serde::Deserialize])]
mod tickets {
    use harness_guest::{caller, kv, log};

    use super::{MAX_BODY, MAX_TITLE, SUPPORT_ROLE, key};

    impl From<harness_guest::Error> for TicketError {
        fn from(error: harness_guest::Error) -> TicketError {
            TicketError::Storage(error.to_string())
        }
    }

    /// Opens a ticket for the caller.
    pub fn create(title: String, body: String, priority: Priority) -> Result<Ticket, TicketError> {
        let title = title.trim().to_owned();
        if title.is_empty() {
            return Err(TicketError::Invalid("the title is empty".into()));
        }
        if title.chars().count() > MAX_TITLE {
            return Err(TicketError::Invalid(format!(
                "the title is over {MAX_TITLE} characters"
            )));
        }
        if body.len() > MAX_BODY {
            return Err(TicketError::Invalid(format!("the body is over {MAX_BODY} bytes")));
        }
        let who = caller::current();
        let id = kv::get_json::<u32>("next-id")?.unwrap_or(0) + 1;
        let ticket = Ticket {
            id,
            title,
            body,
            priority,
            status: Status::Open,
            opened_by: who.principal,
            opened_in_run: who.run_id,
        };
        kv::set_json(&key(id), &ticket)?;
        kv::set_json("next-id", &id)?;
        log::info(format!("ticket {id} opened by {}", ticket.opened_by));
        Ok(ticket)
    }

    /// One ticket.
    pub fn get(id: u32) -> Result<Ticket, TicketError> {
        kv::get_json(&key(id))?.ok_or(TicketError::NotFound(id))
    }

    /// Tickets, newest first.
    pub fn list(status: Option<Status>) -> Result<Vec<Ticket>, TicketError> {
        let mut tickets = Vec::new();
        for key in kv::keys("ticket/")?.iter().rev() {
            if let Some(ticket) = kv::get_json::<Ticket>(key)?
                && status.is_none_or(|s| s == ticket.status)
            {
                tickets.push(ticket);
            }
        }
        Ok(tickets)
    }

    /// Closes (resolves) a ticket, if the caller opened it or works in support.
    pub fn resolve(id: u32) -> Result<Ticket, TicketError> {
        let mut ticket = get(id)?;
        let who = caller::current();
        if ticket.opened_by != who.principal && !who.has_role(SUPPORT_ROLE) {
            return Err(TicketError::NotAllowed(format!(
                "{} did not open ticket {id} and lacks the {SUPPORT_ROLE} role",
                who.principal
            )));
        }
        ticket.status = Status::Closed;
        kv::set_json(&key(id), &ticket)?;
        log::info(format!("ticket {id} closed by {}", who.principal));
        Ok(ticket)
    }
}

/// The storage key of ticket `id`.
fn key(id: u32) -> String {
    format!("ticket/{id:08}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_sort_in_id_order() {
        assert!(super::key(9) < super::key(10));
        assert_eq!(super::key(42), "ticket/00000042");
    }
}
