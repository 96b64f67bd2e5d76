//! Test support (feature `testing`): an in-process SMTP sink that speaks just enough
//! SMTP (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) for lettre, and collects what
//! it is sent, so that tests hold a real SMTP conversation without an outside program.

// Test support: a setup that cannot proceed is a failed test, so it may panic.
#![allow(clippy::panic, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// One accepted message: the envelope and the raw DATA (dot-unstuffed).
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: String,
}

impl ReceivedMail {
    /// The value of the first header named `name` (case-insensitive) of the message.
    pub fn header(&self, name: &str) -> Option<String> {
        header_in(self.data.split("\r\n\r\n").next().unwrap_or(""), name)
    }

    /// Each leaf part of a multipart message: (Content-Type, decoded body).
    pub fn parts(&self) -> Vec<(String, String)> {
        let content_type = self.header("Content-Type").unwrap_or_default();
        let Some(boundary) = content_type
            .split("boundary=")
            .nth(1)
            .map(|b| b.trim_matches('"').to_owned())
        else {
            return Vec::new();
        };
        self.data
            .split(&format!("--{boundary}"))
            .skip(1)
            .filter_map(|part| {
                let (head, body) = part.split_once("\r\n\r\n")?;
                let ct = header_in(head, "Content-Type")?;
                let body = body.trim_end_matches("\r\n");
                let decoded = match header_in(head, "Content-Transfer-Encoding")
                    .unwrap_or_default()
                    .to_ascii_lowercase()
                    .as_str()
                {
                    "quoted-printable" => decode_qp(body),
                    "base64" => decode_base64(body),
                    _ => body.to_owned(),
                };
                Some((ct, decoded))
            })
            .collect()
    }

    /// The decoded body of the first part whose Content-Type starts with `mime`.
    pub fn part(&self, mime: &str) -> Option<String> {
        self.parts()
            .into_iter()
            .find(|(ct, _)| ct.starts_with(mime))
            .map(|(_, body)| body)
    }
}

fn header_in(head: &str, name: &str) -> Option<String> {
    // Unfold continuation lines first (RFC 5322 §2.2.3).
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

fn decode_qp(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    String::from_utf8_lossy(&super::settings::unescape_hex(&joined, b'=')).into_owned()
}

fn decode_base64(body: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in body.bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
            continue;
        };
        acc = (acc << 6) | u32::try_from(v).unwrap_or(0);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Recipients whose address starts with this are refused for good (550), as a relay
/// refuses a mailbox that does not exist.
pub const REFUSED_PREFIX: &str = "nobody";

/// A port on 127.0.0.1 that was free a moment ago and where nothing listens now.
pub fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The sink: listens on 127.0.0.1 (a free port) until dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    arrived: Arc<Notify>,
    /// While false, a message is recorded but its final `250` waits: a delivery held in
    /// flight (see `start_holding`).
    open: Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// On a given port of 127.0.0.1 (0: any free one), e.g. the port a server was told
    /// about while nothing listened there, to end an outage.
    pub async fn start_on(port: u16) -> Self {
        Self::listen(port, true).await
    }

    /// A sink that records each message but holds its final `250` until `release`: the
    /// sender's delivery stays in flight (e.g. across a server's shutdown).
    pub async fn start_holding() -> Self {
        Self::listen(0, false).await
    }

    /// Lets every held and later message be accepted.
    pub fn release(&self) {
        self.open.send_replace(true);
    }

    async fn listen(port: u16, open: bool) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("binding the SMTP sink");
        let addr = listener.local_addr().expect("the sink's address");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let open = Arc::new(tokio::sync::watch::Sender::new(open));
        let (m, a, o) = (Arc::clone(&mails), Arc::clone(&arrived), Arc::clone(&open));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (m, a, gate) = (Arc::clone(&m), Arc::clone(&a), o.subscribe());
                tokio::spawn(async move {
                    let _ = converse(stream, m, a, gate).await;
                });
            }
        });
        Self {
            addr,
            mails,
            arrived,
            open,
            task,
        }
    }

    /// `smtp://127.0.0.1:<port>`, for `TESSERA_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Everything received so far.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.mails.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Waits until at least `n` messages arrived, or `patience` passed; returns them all.
    /// A bound on waiting, not a timing assertion: callers assert on what arrived.
    pub async fn wait_for(&self, n: usize, patience: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.mails();
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn converse(
    stream: TcpStream,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    arrived: Arc<Notify>,
    mut gate: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ESMTP test\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" | "NOOP" => b"250 ok\r\n",
            "MAIL" => {
                from = address(&command);
                b"250 ok\r\n"
            }
            // A relay that knows its mailboxes: `nobody…@` does not exist, for good.
            "RCPT" if address(&command).starts_with(REFUSED_PREFIX) => {
                b"550 5.1.1 no such mailbox\r\n"
            }
            "RCPT" => {
                to.push(address(&command));
                b"250 ok\r\n"
            }
            "RSET" => {
                (from, to) = (String::new(), Vec::new());
                b"250 ok\r\n"
            }
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                if let Ok(mut m) = mails.lock() {
                    m.push(ReceivedMail {
                        mail_from: std::mem::take(&mut from),
                        rcpt_to: std::mem::take(&mut to),
                        data,
                    });
                }
                arrived.notify_waiters();
                let _ = gate.wait_for(|open| *open).await;
                b"250 queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

fn address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(addr, _)| addr.to_owned())
        .unwrap_or_default()
}
