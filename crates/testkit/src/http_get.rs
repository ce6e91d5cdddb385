//! One HTTP/1.0 GET over a plain TCP connection, for tests that scrape a local server (the
//! server closes the connection after answering).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` on `addr`: the status code and the body.
///
/// # Panics
/// When the server cannot be reached or answers something that is not HTTP.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut connection = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    connection
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut answer = String::new();
    connection
        .read_to_string(&mut answer)
        .await
        .expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, body.to_owned())
}
