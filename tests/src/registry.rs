//! An OCI registry on loopback for tests: the CNCF distribution registry from Debian's
//! `docker-registry` package, with basic-auth credentials, started by `scripts/registry.sh`.
//!
//! `scripts/test.sh` starts one for the whole run and names it in `HARNESS_TEST_REGISTRY`
//! (`ADDR USER PASSWORD`); without that variable, each test starts its own in a temporary folder.

use std::process::Command;

/// A registry the test may push to and pull from.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// A user it accepts.
    pub user: String,
    /// That user's password.
    pub password: String,
    own: Option<tempfile::TempDir>,
}

impl Registry {
    /// The run's registry, or a new one.
    pub fn start() -> Self {
        let (named, own) = match std::env::var("HARNESS_TEST_REGISTRY") {
            Ok(named) => (named, None),
            Err(_) => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let started = crate::start_service("registry.sh", "docker-registry", dir.path());
                (started, Some(dir))
            }
        };
        let parts: Vec<&str> = named.split_whitespace().collect();
        let [addr, user, password] = parts[..] else {
            panic!("a registry is named `ADDR USER PASSWORD`, not `{named}`");
        };
        Self {
            addr: addr.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
            own,
        }
    }

    /// `oci://ADDR/REPOSITORY:TAG`.
    pub fn reference(&self, repository: &str, tag: &str) -> String {
        format!("oci://{}/{repository}:{tag}", self.addr)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(dir) = &self.own
            && let Ok(pid) = std::fs::read_to_string(dir.path().join("pid"))
        {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// A loopback address nothing listens on (a moment ago).
pub fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding loopback");
    listener.local_addr().expect("an address").to_string()
}
