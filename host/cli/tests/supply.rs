//! Signed tools and tools pulled from an OCI registry, through the `harness` binary, against a
//! real registry on loopback (Debian's docker-registry with basic auth).

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::{Run, harness};
use harness_e2e::registry::{Registry, free_port};
use harness_e2e::{PolicyFile, example_tool, sha256_file};

const PASSWORD: &str = "correct horse";

/// Makes signing key NAME in `dir` (encrypted with [`PASSWORD`]); returns its public key line.
fn signing_key(dir: &Path, name: &str) -> String {
    let made = harness(
        &["keys", "signing", name, "--dir", dir.to_str().unwrap()],
        &[("HARNESS_SIGNING_PASSWORD", PASSWORD)],
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    let public = std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
    let line = public.lines().nth(1).unwrap().to_owned();
    assert!(
        made.stdout.contains(&format!("{name} = \"{line}\"")),
        "{}",
        made.stdout
    );
    line
}

/// `harness sign calc` with `key`, whose password is `password`.
fn sign_with(policy: &Path, key: &Path, password: &str) -> Run {
    harness(
        &[
            "sign",
            "calc",
            "--policy",
            policy.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        &[("HARNESS_SIGNING_PASSWORD", password)],
    )
}

fn sign(policy: &Path, key: &Path) -> Run {
    sign_with(policy, key, PASSWORD)
}

fn on(policy: &Path, command: &str, env: &[(&str, &str)]) -> Run {
    harness(&[command, "--policy", policy.to_str().unwrap()], env)
}

/// A whitelist requiring signatures, trusting `trusted` (TOML lines), with tool calc at
/// `component` and `extra` keys.
fn whitelist(dir: &Path, trusted: &str, component: &Path, extra: &str) -> PathBuf {
    PolicyFile::new(&dir.join("cache"))
        .raw(&format!(
            "[defaults]\nrequire_signatures = true\n[trust.keys]\n{trusted}"
        ))
        .tool("calc", component, extra)
        .write(dir)
}

fn refused(run: &Run, needle: &str) {
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains(needle), "expected `{needle}` in: {said}");
}

#[test]
fn a_signature_covers_the_component_and_its_whole_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let component = dir.join("calc.wasm");
    std::fs::copy(example_tool("calc"), &component).unwrap();
    let alice = signing_key(dir, "alice");
    let bob = signing_key(dir, "bob");
    let trust_alice = format!("alice = \"{alice}\"");
    let entry = "fuel = 50_000_000\nroles = [\"ops\"]";
    let policy = whitelist(dir, &trust_alice, &component, entry);

    let unsigned = on(&policy, "check", &[]);
    refused(
        &unsigned,
        "signatures are required, but there is no signature at",
    );
    refused(&unsigned, "calc.wasm.sig");

    let wrong = sign_with(&policy, &dir.join("alice.key"), "not it");
    assert_ne!(wrong.code, 0);
    assert!(wrong.stderr.contains("Wrong password"), "{}", wrong.stderr);

    let signed = sign(&policy, &dir.join("alice.key"));
    assert_eq!(signed.code, 0, "{}", signed.stderr);
    assert!(
        signed.stdout.contains("\"fuel\": 50000000") && signed.stdout.contains("\"roles\": ["),
        "the reviewer sees what is signed: {}",
        signed.stdout
    );
    assert_eq!(on(&policy, "check", &[]).code, 0);
    let verified = on(&policy, "verify", &[]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    assert!(
        verified
            .stdout
            .starts_with("calc: signed by `alice` (key ID "),
        "{}",
        verified.stdout
    );
    let audit = harness(
        &[
            "audit",
            component.to_str().unwrap(),
            "--tool",
            "calc",
            "--policy",
            policy.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        audit.stdout.contains("signature: signed by `alice`"),
        "{}",
        audit.stdout
    );

    // Each change to the entry is refused, naming the key and both values.
    let changed = |extra: &str| whitelist(dir, &trust_alice, &component, extra);
    refused(
        &on(
            &changed("fuel = 60_000_000\nroles = [\"ops\"]"),
            "check",
            &[],
        ),
        "changed since signing: fuel: signed 50000000, now 60000000",
    );
    refused(
        &on(
            &changed(&format!("{entry}\nenv = {{ MODE = \"fast\" }}")),
            "check",
            &[],
        ),
        "env: signed (absent), now {\"MODE\":\"fast\"}",
    );
    refused(
        &on(
            &changed("fuel = 50_000_000\nroles = [\"dev\"]"),
            "check",
            &[],
        ),
        "roles[0]: signed \"ops\", now \"dev\"",
    );

    // Another component under the same name, pinned anew, is not what was signed.
    let original = std::fs::read(&component).unwrap();
    let mut other = original.clone();
    other.extend_from_slice(b"\0\x04name\0"); // an extra custom section: same code, new digest
    std::fs::write(&component, &other).unwrap();
    refused(
        &on(&changed(entry), "check", &[]),
        &format!(
            "covers component sha256 {}, but the whitelist pins {}",
            harness_sandbox::Sha256Digest::of(&original),
            sha256_file(&component)
        ),
    );
    std::fs::write(&component, &original).unwrap();
    let policy = changed(entry);
    assert_eq!(on(&policy, "check", &[]).code, 0);

    // A signature altered after signing.
    let signature_file = dir.join("calc.wasm.sig");
    let good = std::fs::read_to_string(&signature_file).unwrap();
    let mut file: serde_json::Value = serde_json::from_str(&good).unwrap();
    let minisign = file["minisign"].as_str().unwrap().to_owned();
    let mut lines: Vec<String> = minisign.lines().map(str::to_owned).collect();
    let flipped = if lines[1].as_bytes()[20] == b'A' {
        "B"
    } else {
        "A"
    };
    lines[1].replace_range(20..21, flipped);
    file["minisign"] = (lines.join("\n") + "\n").into();
    std::fs::write(&signature_file, file.to_string()).unwrap();
    refused(
        &on(&policy, "check", &[]),
        "does not verify with trusted key `alice`: the file was altered after signing",
    );

    // A key the whitelist does not trust; then both, as during a key rotation.
    assert_eq!(sign(&policy, &dir.join("bob.key")).code, 0);
    refused(
        &on(&policy, "verify", &[]),
        "which is not in [trust] keys (trusted: alice)",
    );
    let both = whitelist(
        dir,
        &format!("{trust_alice}\nbob = \"{bob}\""),
        &component,
        entry,
    );
    assert!(
        on(&both, "verify", &[])
            .stdout
            .starts_with("calc: signed by `bob`")
    );
    assert_eq!(sign(&both, &dir.join("alice.key")).code, 0);
    assert!(
        on(&both, "verify", &[])
            .stdout
            .starts_with("calc: signed by `alice`")
    );

    // Without require_signatures an unsigned tool loads, and says so.
    std::fs::remove_file(&signature_file).unwrap();
    let optional = PolicyFile::new(&dir.join("cache"))
        .tool("calc", &component, entry)
        .write(dir);
    let verified = on(&optional, "verify", &[]);
    assert_eq!(
        verified.stdout,
        "calc: unsigned (signatures not required)\n"
    );
}

#[test]
fn registry_tools_are_pulled_by_digest_with_their_signature() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let no_docker = dir.join("no-docker");
    std::fs::create_dir(&no_docker).unwrap();
    let anonymous = [("DOCKER_CONFIG", no_docker.to_str().unwrap())];
    let with_credentials = [
        anonymous[0],
        ("HARNESS_REGISTRY_USERNAME", registry.user.as_str()),
        ("HARNESS_REGISTRY_PASSWORD", registry.password.as_str()),
    ];
    let repository = format!("supply/calc-{}", std::process::id());
    let reference = registry.reference(&repository, "1.0");
    let calc = example_tool("calc");
    let digest = sha256_file(&calc);
    let alice = signing_key(dir, "alice");
    let trust = format!("alice = \"{alice}\"");

    // A reviewer signs the entry; CI publishes the component with that signature.
    let local = dir.join("local");
    std::fs::create_dir(&local).unwrap();
    std::fs::copy(&calc, local.join("calc.wasm")).unwrap();
    let reviewed = whitelist(
        &local,
        &trust,
        &local.join("calc.wasm"),
        "fuel = 50_000_000",
    );
    assert_eq!(sign(&reviewed, &dir.join("alice.key")).code, 0);
    let signature = local.join("calc.wasm.sig");
    let push = |file: &Path, env: &[(&str, &str)]| {
        harness(
            &[
                "push",
                file.to_str().unwrap(),
                &reference,
                "--signature",
                signature.to_str().unwrap(),
            ],
            env,
        )
    };
    let denied = push(&calc, &anonymous);
    assert_ne!(denied.code, 0);
    assert!(
        denied.stderr.contains("refused access")
            && denied.stderr.contains("HARNESS_REGISTRY_USERNAME"),
        "{}",
        denied.stderr
    );
    let pushed = push(&calc, &with_credentials);
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    assert!(
        pushed.stdout.contains(&format!("sha256:   {digest}")),
        "{}",
        pushed.stdout
    );
    assert!(
        pushed.stdout.contains("signature attached: sha256:"),
        "{}",
        pushed.stdout
    );

    let from_registry_with = |name: &str, source: &str, entry: &str| {
        let place = dir.join(name);
        std::fs::create_dir_all(&place).unwrap();
        PolicyFile::new(&place.join("cache"))
            .raw(&format!(
                "[defaults]\nrequire_signatures = true\n[trust.keys]\n{trust}"
            ))
            .raw(&format!(
                "[tools.calc]\ncomponent = \"{source}\"\nsha256 = \"{digest}\"\n{entry}"
            ))
            .write(&place)
    };
    let from_registry =
        |name: &str, source: &str| from_registry_with(name, source, "fuel = 50_000_000");

    // Pulled with credentials, verified, cached by digest beside the compile cache, run.
    let pulled = from_registry("pulled", &reference);
    let called = harness(
        &[
            "call",
            "--policy",
            pulled.to_str().unwrap(),
            "calc.apply",
            r#"{"op": "add", "a": 1, "b": 2}"#,
        ],
        &with_credentials,
    );
    assert_eq!(called.code, 0, "{}", called.stderr);
    assert_eq!(called.stdout.trim(), "3.0");
    let cached = dir.join("pulled/cache/oci");
    assert!(cached.join(format!("{digest}.wasm")).is_file());
    assert!(cached.join(format!("{digest}.sig")).is_file());
    assert!(
        on(&pulled, "verify", &[])
            .stdout
            .starts_with("calc: signed by `alice`")
    );
    let listed = harness(
        &["tools", "--json", "--policy", pulled.to_str().unwrap()],
        &[],
    );
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed["tools"][0]["source"], reference.as_str());
    assert_eq!(listed["tools"][0]["signature"]["status"], "signed");
    assert_eq!(listed["tools"][0]["signature"]["key"], "alice");

    // Without credentials: a clear refusal that never shows the password.
    let anonymous_pull = on(&from_registry("anonymous", &reference), "check", &anonymous);
    refused(&anonymous_pull, "refused access to");
    assert!(!anonymous_pull.stderr.contains(&registry.password));

    // Credentials from a docker config file.
    let docker = dir.join("docker");
    std::fs::create_dir(&docker).unwrap();
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", registry.user, registry.password));
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let docker_pull = on(
        &from_registry("docker", &reference),
        "verify",
        &[("DOCKER_CONFIG", docker.to_str().unwrap())],
    );
    assert_eq!(docker_pull.code, 0, "{}", docker_pull.stderr);

    // The reviewer signs a changed entry and CI publishes it again: the signature cached with the
    // component is stale, so the newest one in the registry is fetched and checked.
    let changed = whitelist(
        &local,
        &trust,
        &local.join("calc.wasm"),
        "fuel = 60_000_000",
    );
    assert_eq!(sign(&changed, &dir.join("alice.key")).code, 0);
    assert_eq!(push(&calc, &with_credentials).code, 0);
    let rereviewed = from_registry_with("pulled", &reference, "fuel = 60_000_000");
    refused(
        &on(&rereviewed, "verify", &anonymous),
        "fuel: signed 50000000, now 60000000",
    );
    let verified = on(&rereviewed, "verify", &with_credentials);
    assert!(
        verified.stdout.starts_with("calc: signed by `alice`"),
        "{}{}",
        verified.stdout,
        verified.stderr
    );

    // The tag moved to another component: refused with both digests; the cache still serves
    // what was pinned.
    let kb = example_tool("kb");
    assert_eq!(push(&kb, &with_credentials).code, 0);
    refused(
        &on(
            &from_registry("retagged", &reference),
            "check",
            &with_credentials,
        ),
        &format!(
            "now holds component sha256 {}, but the whitelist pins {digest}",
            sha256_file(&kb)
        ),
    );
    assert_eq!(on(&pulled, "check", &with_credentials).code, 0);

    // A missing image; a registry that is down (the cached component loads without it).
    let missing = registry.reference(&repository, "missing");
    refused(
        &on(
            &from_registry("missing", &missing),
            "check",
            &with_credentials,
        ),
        &format!("{missing} does not exist in the registry"),
    );
    let down = format!("oci://{}/{repository}:1.0", free_port());
    refused(
        &on(&from_registry("down", &down), "check", &with_credentials),
        "is unreachable",
    );
    let offline = std::fs::read_to_string(&pulled)
        .unwrap()
        .replace(&reference, &down);
    std::fs::write(&pulled, offline).unwrap();
    let offline = on(&pulled, "check", &[]);
    assert_eq!(offline.code, 0, "{}", offline.stderr);
}
