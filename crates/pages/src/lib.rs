//! Error and maintenance pages for the Kubernetes ingress: the default backend that
//! ingress-nginx (custom errors: `X-Code`, `X-Format`, `X-Original-URI`, …) or
//! Traefik's errors middleware (`/{status}.html`) asks for a page. The page is
//! branded for the organisation that owns the requested `Host`, written in the
//! reader's language (`Accept-Language`, catalogues in `locales/*.toml`), rendered as
//! HTML, JSON, XML or text, and turns into a maintenance page (503 with
//! `Retry-After`) while one of the organisation's maintenance windows is active.
//! [`respond`] is the pure core; [`router`] serves it and refreshes the
//! organisations' [`Snapshot`] from a [`Source`] in the background.

mod catalogue;
mod escape;
mod http;
mod index;
mod model;
mod negotiate;
mod page;
mod validate;

pub use catalogue::{Catalogue, Locale, REQUIRED_CODES};
pub use http::{into_response, router, Pages, PagesConfig};
pub use index::{Index, DEFAULT_ANNOUNCE_AHEAD};
pub use model::{Branding, FixedSource, MaintenanceWindow, Site, Snapshot, Source, StaticSource};
pub use negotiate::{parse_code, Format, PathForm};
pub use page::{
    respond, PageRequest, PageResponse, MAX_HEADERS_TOTAL, MAX_HEADER_LINE, MAX_REFLECTED,
    MAX_REQUEST_ID,
};
pub use validate::{validate_color, validate_email, validate_host, validate_url};
