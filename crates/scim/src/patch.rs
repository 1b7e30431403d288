//! PATCH (RFC 7644 §3.5.2): parsing and application to a stored resource.
