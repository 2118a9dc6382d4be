//! The calculator tool: arithmetic with typed errors, and no capability but logging.

#[harness_guest::tool]
mod calc {
    use harness_guest::log;

    /// Applies `op` to `a` and `b`.
    pub fn apply(op: Op, a: f64, b: f64) -> Result<f64, CalcError> {
        let value = match op {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
            Op::Div if b == 0.0 => {
                log::warn("division by zero refused");
                return Err(CalcError::DivisionByZero);
            }
            Op::Div => a / b,
        };
        if value.is_infinite() {
            return Err(CalcError::Overflow(
                "the result is beyond the range of f64".into(),
            ));
        }
        Ok(value)
    }

    /// Adds whole numbers exactly.
    pub fn sum(values: Vec<i64>) -> Result<i64, CalcError> {
        values.iter().enumerate().try_fold(0i64, |total, (i, v)| {
            total
                .checked_add(*v)
                .ok_or_else(|| CalcError::Overflow(format!("adding item {i}")))
        })
    }

    /// The smallest and largest of `values`.
    pub fn range(values: Vec<f64>) -> Option<(f64, f64)> {
        let first = *values.first()?;
        Some(
            values
                .iter()
                .fold((first, first), |(lo, hi), v| (lo.min(*v), hi.max(*v))),
        )
    }
}
