//! One module per app kind, each implementing [`crate::Connector`].
