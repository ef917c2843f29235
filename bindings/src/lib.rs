//! Python bindings of llama-orch (`import llorch`).

use llorch_core::{ErrorCode, ModelRef};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Checks a model reference and returns its canonical text; raises `ValueError` naming the defect.
#[pyfunction]
fn parse_model_ref(text: &str) -> PyResult<String> {
    text.parse::<ModelRef>()
        .map(|r| r.to_string())
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The stable error codes as `(code, http_status, retriable)` tuples.
#[pyfunction]
fn error_codes() -> Vec<(&'static str, u16, bool)> {
    ErrorCode::ALL
        .into_iter()
        .map(|c| (c.as_str(), c.http_status(), c.retriable()))
        .collect()
}

/// The `llorch` Python module.
#[pymodule]
#[pyo3(name = "llorch")]
fn llorch_py(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_model_ref, m)?)?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
