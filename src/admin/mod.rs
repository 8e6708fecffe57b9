//! The operator's view of the balancer and their hands on it: the admin
//! API ([`api`], behind [`auth`]) and the status views ([`status`]) it
//! shares with the `/check` page.

pub mod api;
pub mod auth;
pub mod status;
