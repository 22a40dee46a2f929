//! Consul catalog and agent registrations and their health checks, on the shared registry.
//! Variants and fields are append-only (postcard encodes positions).

use serde::Deserialize;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CatalogCmd {}

impl CatalogCmd {
    pub fn name(&self) -> &'static str {
        match *self {}
    }
}
