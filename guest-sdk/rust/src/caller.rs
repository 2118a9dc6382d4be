//! On whose behalf the current call runs (`harness:tool/caller`), read-only.

pub use crate::bindings::harness::tool::caller::Info as Caller;

/// The principal, roles and run id of the call in progress.
pub fn current() -> Caller {
    crate::bindings::harness::tool::caller::current()
}

impl Caller {
    /// Whether the host granted `role` to the caller.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_match_exactly() {
        let caller = Caller {
            principal: "ana".into(),
            roles: vec!["support".into(), "viewer".into()],
            run_id: "run-1".into(),
        };
        assert!(caller.has_role("support"));
        assert!(!caller.has_role("support-lead"));
        assert!(!caller.has_role("admin"));
    }
}
