//! rustls server and client configurations: native, bundled or file roots, client certificates, reload.
