//! Mel (not yet built; see the report).
use crate::design::{Design, DesignError};
use crate::spec::MelSpec;

pub fn build(spec: &MelSpec) -> Result<Design, DesignError> {
    Err(DesignError::Invalid {
        design: spec.name.clone(),
        message: "mel design not implemented yet".into(),
    })
}
