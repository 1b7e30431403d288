//! One module per app kind, each implementing [`crate::Connector`].
pub mod scim;
pub mod synapse;
pub mod nextcloud;
pub mod rocketchat;
