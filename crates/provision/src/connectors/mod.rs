//! One module per app kind, each implementing [`crate::Connector`].
pub mod nextcloud;
pub mod rocketchat;
pub mod scim;
pub mod synapse;
