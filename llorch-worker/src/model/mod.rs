//! Model definitions: configuration from metadata and the weights in the file.

pub mod config;
pub mod load;
pub mod weights;

pub use config::{Arch, ConfigError, ModelConfig};
pub use weights::{Layer, Matrix, Weights, WeightsError};
