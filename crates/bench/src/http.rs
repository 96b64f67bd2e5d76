//! A minimal keep-alive HTTP/1.1 client over one TCP connection: the load generator's
//! only transport. Written by hand rather than through a client library so that the
//! client's own CPU per request stays small and known (it shares the cores with the
//! server) and every byte sent is the request the scenario built.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One answer: status, raw head (for the few headers set-up needs) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
    /// The server asked to close (or spoke HTTP/1.0): the connection is not reused.
    pub close: bool,
}

impl Response {
    /// Every value of header `name` (case-insensitive).
    pub fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.head.split("\r\n").skip(1).filter_map(move |line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        // Requests are written in one piece; Nagle would only add latency to each.
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: vec![0; 16 * 1024],
            pos: 0,
            len: 0,
        })
    }

    /// Sends one complete request (head and body already encoded) and reads its answer.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<Response> {
        self.stream.write_all(request).await?;
        self.read_response().await
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        } else if self.len == self.buf.len() {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.len, 0);
                self.len -= self.pos;
                self.pos = 0;
            } else {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.len..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        self.len += n;
        Ok(())
    }

    /// Bytes up to and including the next CRLF (a chunk-size line).
    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = find(&self.buf[self.pos..self.len], b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.pos..self.pos + i]).into_owned();
                self.pos += i + 2;
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    async fn take(&mut self, n: usize, out: &mut Vec<u8>) -> io::Result<()> {
        let mut left = n;
        while left > 0 {
            if self.pos == self.len {
                self.fill().await?;
            }
            let k = left.min(self.len - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            left -= k;
        }
        Ok(())
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        let head_len = loop {
            if let Some(i) = find(&self.buf[self.pos..self.len], b"\r\n\r\n") {
                break i;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[self.pos..self.pos + head_len]).into_owned();
        self.pos += head_len + 4;
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed response head");
        let status_line = head.split("\r\n").next().ok_or_else(bad)?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        let mut length = None;
        let mut chunked = false;
        let mut close = status_line.starts_with("HTTP/1.0");
        for line in head.split("\r\n").skip(1) {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                length = Some(v.parse::<usize>().map_err(|_| bad())?);
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case("chunked");
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.eq_ignore_ascii_case("close");
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let size_line = self.line().await?;
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| bad())?;
                if size == 0 {
                    // Trailers, then the blank line that ends the message.
                    while !self.line().await?.is_empty() {}
                    break;
                }
                self.take(size, &mut body).await?;
                self.line().await?;
            }
        } else if let Some(n) = length {
            self.take(n, &mut body).await?;
        } else if !(status == 204 || status == 304 || (100..200).contains(&status)) {
            // No length and not chunked: the body runs to the end of the connection.
            close = true;
            loop {
                if self.pos < self.len {
                    body.extend_from_slice(&self.buf[self.pos..self.len]);
                    self.pos = self.len;
                }
                match self.fill().await {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(Response {
            status,
            head,
            body,
            close,
        })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Encodes a request. `headers` are complete `Name: value` lines without CRLF.
pub fn request(
    method: &str,
    path: &str,
    headers: &[String],
    body: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: bench.local\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    match body {
        Some((content_type, body)) => {
            out.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        }
        None => out.push_str("\r\n"),
    }
    out.into_bytes()
}

pub fn json_request(path: &str, headers: &[String], body: &serde_json::Value) -> Vec<u8> {
    request(
        "POST",
        path,
        headers,
        Some(("application/json", &body.to_string())),
    )
}

/// One request on a connection of its own (set-up, not load).
pub async fn once(addr: SocketAddr, request: &[u8]) -> anyhow::Result<Response> {
    let mut conn = Conn::connect(addr).await?;
    Ok(conn.send(request).await?)
}

/// `application/x-www-form-urlencoded` of `fields`.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
