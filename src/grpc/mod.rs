//! gRPC adapters: the cluster port (9849) now; the Nacos SDK port (9848) belongs here too.

pub mod cluster;

/// Generated from `proto/cluster.proto`.
#[allow(clippy::all)]
pub mod pb {
    tonic::include_proto!("batata.cluster");
}
