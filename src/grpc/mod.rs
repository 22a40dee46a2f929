//! gRPC adapters: the cluster port (9849) and the Nacos SDK port (9848).

pub mod cluster;
pub mod nacos;

/// Generated from `proto/cluster.proto`.
#[allow(clippy::all)]
pub mod pb {
    tonic::include_proto!("batata.cluster");
}
