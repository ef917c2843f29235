//! `llorch inspect PATH [--json]`: what a GGUF file holds (issue 4).
//!
//! Architecture, parameter count, context length, tensor types and counts,
//! the metadata (arrays summarized) and the tensor table; as aligned text or
//! one JSON object. A bad file is one typed error (WORK-3030), never a panic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use llorch_worker::gguf::{GgufError, GgufFile, MetaValue};
use serde_json::{Value, json};

/// Opens and validates `path`, then renders the report (text or JSON).
pub fn inspect(path: &Path, as_json: bool) -> Result<String, GgufError> {
    let f = GgufFile::open(path)?;
    Ok(if as_json {
        report_json(path, &f).to_string()
    } else {
        report_text(path, &f)
    })
}

/// Tensor types and how many tensors have each, most frequent first.
pub fn type_counts(f: &GgufFile) -> Vec<(String, usize)> {
    let mut m: BTreeMap<String, usize> = BTreeMap::new();
    for t in f.tensors() {
        *m.entry(t.ggml_type.name().to_string()).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

fn arch_u64(f: &GgufFile, key: &str) -> Option<u64> {
    f.architecture()
        .and_then(|a| f.metadata().get_u64(&format!("{a}.{key}")))
}

fn scalar_json(v: &MetaValue) -> Value {
    match v {
        MetaValue::String(s) => json!(s),
        MetaValue::Bool(b) => json!(b),
        MetaValue::F32(x) => json!(x),
        MetaValue::F64(x) => json!(x),
        MetaValue::Array(a) => json!({
            "array_of": a.first().map_or("empty", MetaValue::type_name),
            "len": a.len(),
        }),
        other => other
            .as_i64()
            .map_or_else(|| json!(other.as_u64()), |i| json!(i)),
    }
}

fn scalar_text(v: &MetaValue) -> String {
    match v {
        MetaValue::String(s) => {
            let short: String = s.chars().take(60).collect();
            let more = if short.len() < s.len() { "…" } else { "" };
            format!("{short:?}{more}").replace('\n', "\\n")
        }
        MetaValue::Array(a) => {
            format!(
                "[{} × {}]",
                a.len(),
                a.first().map_or("?", MetaValue::type_name)
            )
        }
        MetaValue::Bool(b) => b.to_string(),
        MetaValue::F32(x) => x.to_string(),
        MetaValue::F64(x) => x.to_string(),
        other => scalar_json(other).to_string(),
    }
}

fn report_json(path: &Path, f: &GgufFile) -> Value {
    let counts: serde_json::Map<String, Value> = type_counts(f)
        .into_iter()
        .map(|(k, n)| (k, json!(n)))
        .collect();
    let metadata: serde_json::Map<String, Value> = f
        .metadata()
        .iter()
        .map(|(k, v)| (k.to_string(), scalar_json(v)))
        .collect();
    let tensors: Vec<Value> = f
        .tensors()
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "type": t.ggml_type.name(),
                "dims": t.dims,
                "n_elements": t.n_elements(),
                "offset": t.offset,
                "n_bytes": t.n_bytes,
            })
        })
        .collect();
    json!({
        "path": path.display().to_string(),
        "gguf_version": f.version(),
        "file_size": f.len(),
        "architecture": f.architecture(),
        "name": f.metadata().get_str("general.name"),
        "parameters": f.n_params(),
        "context_length": arch_u64(f, "context_length"),
        "block_count": arch_u64(f, "block_count"),
        "alignment": f.alignment(),
        "data_offset": f.data_offset(),
        "n_tensors": f.tensors().len(),
        "tensor_types": counts,
        "metadata": metadata,
        "tensors": tensors,
    })
}

fn human(n: u64) -> String {
    match n {
        0..1_000_000 => format!("{n}"),
        1_000_000..1_000_000_000 => format!("{:.1} M", n as f64 / 1e6),
        _ => format!("{:.2} B", n as f64 / 1e9),
    }
}

fn report_text(path: &Path, f: &GgufFile) -> String {
    let mut s = String::new();
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let counts: Vec<String> = type_counts(f)
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    let _ = writeln!(s, "file:            {}", path.display());
    let _ = writeln!(s, "gguf version:    {}", f.version());
    let _ = writeln!(s, "file size:       {} bytes", f.len());
    let _ = writeln!(s, "architecture:    {}", f.architecture().unwrap_or("-"));
    let _ = writeln!(
        s,
        "name:            {}",
        f.metadata().get_str("general.name").unwrap_or("-")
    );
    let _ = writeln!(
        s,
        "parameters:      {} ({})",
        f.n_params(),
        human(f.n_params())
    );
    let _ = writeln!(s, "context length:  {}", opt(arch_u64(f, "context_length")));
    let _ = writeln!(s, "blocks:          {}", opt(arch_u64(f, "block_count")));
    let _ = writeln!(s, "tensors:         {}", f.tensors().len());
    let _ = writeln!(s, "tensor types:    {}", counts.join(", "));
    let _ = writeln!(
        s,
        "alignment:       {} (data at byte {})",
        f.alignment(),
        f.data_offset()
    );
    let _ = writeln!(s, "\nmetadata ({} keys):", f.metadata().len());
    let kw = f.metadata().iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in f.metadata().iter() {
        let _ = writeln!(s, "  {k:<kw$}  {}", scalar_text(v));
    }
    let rows: Vec<[String; 6]> = f
        .tensors()
        .iter()
        .map(|t| {
            let dims: Vec<String> = t.dims.iter().map(u64::to_string).collect();
            [
                t.name.clone(),
                t.ggml_type.name().to_string(),
                dims.join(" x "),
                t.n_elements().to_string(),
                t.offset.to_string(),
                t.n_bytes.to_string(),
            ]
        })
        .collect();
    let head = ["NAME", "TYPE", "DIMS", "ELEMENTS", "OFFSET", "BYTES"].map(String::from);
    let mut w = head.clone().map(|h| h.len());
    for r in &rows {
        for (wi, c) in w.iter_mut().zip(r) {
            *wi = (*wi).max(c.chars().count());
        }
    }
    let _ = writeln!(s, "\ntensors:");
    for r in std::iter::once(&head).chain(&rows) {
        let _ = writeln!(
            s,
            "  {:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}  {:>w5$}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4],
            w5 = w[5]
        );
    }
    s
}
