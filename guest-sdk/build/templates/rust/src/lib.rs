//! The {{name}} tool: each `pub fn` in the module is a function of the WIT world's.

#[harness_guest::tool]
mod tool {
    use harness_guest::log;

    /// Greets `name`; WIT `result<string, string>` is `Result<String, String>`.
    pub fn greet(name: String) -> Result<String, String> {
        if name.trim().is_empty() {
            return Err("the name is empty".into());
        }
        log::info(format!("greeting {name}"));
        Ok(format!("Hello, {name}!"))
    }
}
