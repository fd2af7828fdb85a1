//! Authentication (password files) and authorisation (ACL files), reloadable on SIGHUP.

pub mod acl;
pub mod password;
