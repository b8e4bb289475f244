//! Microsoft Graph: a synchronous client ([`client`]), signing in ([`auth`]), and `dynrule
//! pull` ([`pull()`]), which writes the tenant snapshot folder `recompute` and `whatif` read.
//!
//! Permissions (application or delegated): `User.Read.All`, `Group.Read.All`,
//! `GroupMember.Read.All`, `Organization.Read.All`, and `Device.Read.All` for devices.

pub mod auth;
pub mod client;
pub mod probe;
pub mod pull;

pub use client::{Client, ClientOptions, GraphError, Token};
pub use pull::{Manifest, PullError, PullOptions, pull};
