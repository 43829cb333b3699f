//! A local HTTP server for the download tests (the network is closed where they run).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// path -> (status, extra headers, body).
pub type Routes = HashMap<String, (u16, String, Vec<u8>)>;

/// Serves the routes that `make` builds from the server's own base URL (path -> (status,
/// extra headers, body)) until the test process ends.
pub fn serve(make: impl FnOnce(&str) -> Routes) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let routes = Arc::new(Mutex::new(make(&base)));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
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
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{headers}\r\n",
                body.len()
            );
            let _ = s.write_all(&[head.as_bytes(), &body].concat());
        }
    });
    base
}
