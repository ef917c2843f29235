//! Fuzzes the GGUF reader (issue 4, WORK-3030): any input must give `Ok` or a
//! typed error, without panics, aborts, hangs or huge allocations; a valid
//! file's tensors must be readable and dequantizable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llorch_worker::gguf::GgufFile;
use llorch_worker::quant::dequantize_row;

fuzz_target!(|data: &[u8]| {
    let borrowed = GgufFile::validate(data);
    match GgufFile::parse(data) {
        Ok(f) => {
            assert!(borrowed.is_ok());
            for t in f.tensors() {
                let bytes = f.tensor_data(t);
                assert_eq!(bytes.len() as u64, t.n_bytes);
                if t.ggml_type.can_dequantize() && t.n_elements() <= 1 << 20 {
                    let mut out = vec![0f32; t.n_elements() as usize];
                    dequantize_row(t.ggml_type, bytes, &mut out).expect("valid tensor dequantizes");
                }
            }
        }
        Err(e) => {
            assert!(borrowed.is_err());
            let msg = e.to_string();
            assert!(!msg.is_empty() && !msg.contains('\n'));
        }
    }
});
