//! fred glue shared by the peer backend (`replication-peer`) and the node store
//! (`replication-node`), so that the two sides cannot disagree about Redis:
//!
//! - [`Failure`]: what a failed call means for retrying. Permanent causes are an
//!   allow-list (our own configuration, a key of the wrong type, arguments the server
//!   refuses for their content); everything else, server-side refusals included (`OOM`,
//!   `READONLY`, `NOREPLICAS`, `LOADING`, ...), may succeed later.
//! - [`scrub`], [`scrub_url_password`]: keeping passwords out of messages (percent-decoding
//!   is core's `percent_decode`, beside the URL parser).
//! - [`into_bytes`], [`into_array`]: raw replies (`fred::types::Value`) as bytes or
//!   elements, with a typed error the caller wraps with its context.

mod failure;
mod reply;
mod secrets;

pub use failure::Failure;
pub use reply::{into_array, into_bytes, ReplyError};
pub use secrets::{scrub, scrub_url_password};
