//! A local HTTP(S) server for the download tests (the network is closed where they run).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// path -> (status, extra headers, body).
pub type Routes = HashMap<String, (u16, String, Vec<u8>)>;

/// Serves the routes that `make` builds from the server's own base URL (path -> (status,
/// extra headers, body)) over plain HTTP until the test process ends.
pub fn serve(make: impl FnOnce(&str) -> Routes) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let routes = Arc::new(Mutex::new(make(&base)));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            answer(&mut s, &routes);
        }
    });
    base
}

/// [`serve`] over HTTPS with a fresh self-signed certificate for `127.0.0.1`: returns the base
/// URL and the certificate (DER), which a client must trust as its root.
pub fn serve_tls(make: impl FnOnce(&str) -> Routes) -> (String, Vec<u8>) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_der = key.cert.der().to_vec();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![key.cert.der().clone()], private)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("https://{}/", listener.local_addr().unwrap());
    let routes = Arc::new(Mutex::new(make(&base)));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(s) = stream else { continue };
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, s);
            answer(&mut tls, &routes);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (base, cert_der)
}

fn answer<S: Read + Write>(s: &mut S, routes: &Mutex<Routes>) {
    // Read the whole request head before answering.
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend(&buf[..n]),
        }
    }
    let req = String::from_utf8_lossy(&req).to_string();
    let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (status, headers, body) =
        routes
            .lock()
            .unwrap()
            .get(&path)
            .cloned()
            .unwrap_or((404, String::new(), vec![]));
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    );
    let _ = s.write_all(&[head.as_bytes(), &body].concat());
}
