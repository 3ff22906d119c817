//! Integration tests of the node store against a real redis-server (one per test).

#![allow(clippy::unwrap_used)]

mod common;
mod conflicts;
mod cost;
mod disconnects;
mod fixture;
mod ha;
mod health;
mod id_limits;
mod round_trip;
mod tree;
