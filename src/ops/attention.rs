//! Attention (not yet built; see the report).
use crate::design::{Design, DesignError};
use crate::spec::AttentionSpec;

pub fn build(spec: &AttentionSpec) -> Result<Design, DesignError> {
    Err(DesignError::Invalid {
        design: spec.name.clone(),
        message: "attention design not implemented yet".into(),
    })
}
