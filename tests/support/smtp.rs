//! A small, real SMTP server for tests: it speaks enough of RFC 5321 for lettre (EHLO/HELO,
//! MAIL FROM, RCPT TO, DATA with dot-unstuffing, RSET, NOOP, QUIT) over loopback, keeps
//! every accepted message with its envelope, and can be told to misbehave. It offers
//! PIPELINING (RFC 2920) and, like Postfix, holds its replies while more commands are
//! already waiting, answering a pipelined group in one write.
//!
//! - [`SmtpServer::pipelining`]: stop (or start again) offering PIPELINING;
//!   [`SmtpServer::pipelined`] counts the envelopes that arrived pipelined, and
//!   [`SmtpServer::ahead`] those that arrived with the content of the message before;
//! - [`SmtpServer::fail_next`]: answer a given reply to MAIL, RCPT or DATA for the next N
//!   messages (a DATA failure is the reply to the message content, after the final dot);
//! - [`SmtpServer::reject_recipient`]: answer `550` to RCPT TO for one address;
//! - [`SmtpServer::stall_data`]: for the next message, wait a while after the content
//!   before answering (the client sees a server hanging in the middle of DATA);
//!   [`SmtpServer::stall_data_after`] lets some messages through first;
//! - [`SmtpServer::too_many_after`]: answer `452 too many recipients` to every RCPT TO
//!   after the first N of a transaction;
//! - [`SmtpServer::close_after_data`]: for the next message, close the connection after
//!   its content, before any reply (the client cannot know whether it was taken);
//!   [`SmtpServer::close_after_reply`] closes it right after the reply (taken);
//! - [`SmtpServer::refuse_login`]: answer `535` to AUTH (it is offered, PLAIN and LOGIN);
//! - [`SmtpServer::hold_greetings`]: accept connections but greet none until released;
//! - [`SmtpServer::behave`]: forget all of the above;
//! - [`SmtpServer::stop`] and [`SmtpServer::restart`]: go away (connections refused) and
//!   come back on the same port.
//!
//! ```ignore
//! let mut server = SmtpServer::start().await;
//! // point the config at 127.0.0.1:{server.port()} with `security: none`
//! server.fail_next(Stage::Mail, 451, "4.3.0 try later", 1);
//! let got = server.wait_for(1, Duration::from_secs(5)).await;
//! ```
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The MAIL FROM address, without brackets.
    pub from: String,
    /// The RCPT TO addresses, in order, without brackets.
    pub to: Vec<String>,
    /// The content as sent, dot-unstuffed, with CRLF line ends, without the final dot.
    pub data: Vec<u8>,
}

/// Where a planned failure answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Mail,
    Rcpt,
    Data,
}

#[derive(Debug, Default)]
struct State {
    received: Vec<Received>,
    /// Every message whose content arrived, accepted or refused, in arrival order.
    attempts: Vec<Received>,
    /// (stage, code, text, how many more messages).
    failures: Vec<(Stage, u16, String, usize)>,
    rejected: Vec<String>,
    stall: Option<Duration>,
    /// Messages to let through before the stall applies.
    stall_after: usize,
    /// Stalls begun so far.
    stalls: usize,
    connections: usize,
    /// Recipients per transaction before `452`.
    rcpt_limit: Option<usize>,
    /// Messages whose content is answered by closing the connection.
    close_after_data: usize,
    refuse_login: bool,
    /// AUTH commands seen.
    logins: usize,
    /// PIPELINING is not offered.
    lockstep: bool,
    /// MAIL commands that arrived with their DATA already behind them.
    pipelined: usize,
    /// Envelopes (MAIL up to DATA) already waiting when the content before them ended.
    ahead: usize,
    /// Messages whose reply is followed by closing the connection.
    close_after_reply: usize,
    /// New connections wait for this to clear before the greeting.
    hold_greetings: bool,
    /// RSET commands seen.
    resets: usize,
}

pub struct SmtpServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: Option<JoinHandle<()>>,
}

impl SmtpServer {
    /// Binds 127.0.0.1 on a free port and starts answering.
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let task = Some(tokio::spawn(serve(listener, state.clone())));
        SmtpServer { addr, state, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every message accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Every message whose content arrived, whatever the reply to it: a message refused at
    /// DATA or answered after a stall is here too, so retries of one email show up as
    /// several entries.
    pub fn attempts(&self) -> Vec<Received> {
        self.state.lock().unwrap().attempts.clone()
    }

    /// How many stalls (see [`SmtpServer::stall_data`]) have begun.
    pub fn stalls(&self) -> usize {
        self.state.lock().unwrap().stalls
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Waits until at least `n` messages arrived (panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} messages, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Answers `code text` at `stage` for the next `messages` messages.
    pub fn fail_next(&self, stage: Stage, code: u16, text: &str, messages: usize) {
        self.state
            .lock()
            .unwrap()
            .failures
            .push((stage, code, text.to_string(), messages));
    }

    /// Answers `550 5.1.1 no such user` to RCPT TO for `address` (compared case-insensitively).
    pub fn reject_recipient(&self, address: &str) {
        self.state
            .lock()
            .unwrap()
            .rejected
            .push(address.to_lowercase());
    }

    /// For the next message, waits `pause` after its content before answering (and then
    /// accepts it, as a slow server would).
    pub fn stall_data(&self, pause: Duration) {
        self.stall_data_after(0, pause);
    }

    /// Like [`SmtpServer::stall_data`], but lets `messages` messages through first.
    pub fn stall_data_after(&self, messages: usize, pause: Duration) {
        let mut s = self.state.lock().unwrap();
        s.stall = Some(pause);
        s.stall_after = messages;
    }

    /// Answers `452 4.5.3 too many recipients` to RCPT TO once a transaction has `n`.
    pub fn too_many_after(&self, n: usize) {
        self.state.lock().unwrap().rcpt_limit = Some(n);
    }

    /// For the next `messages` messages, closes the connection once the content has
    /// arrived, without a reply. The message counts in [`SmtpServer::attempts`] only.
    pub fn close_after_data(&self, messages: usize) {
        self.state.lock().unwrap().close_after_data = messages;
    }

    /// For the next `messages` messages, answers the content and then closes the
    /// connection, whatever the client sent after it (a server that takes one message
    /// per connection).
    pub fn close_after_reply(&self, messages: usize) {
        self.state.lock().unwrap().close_after_reply = messages;
    }

    /// While `hold` holds, connections are accepted but not greeted (a client waits in its
    /// connect); released, every waiting one is greeted.
    pub fn hold_greetings(&self, hold: bool) {
        self.state.lock().unwrap().hold_greetings = hold;
    }

    /// Answers `535 5.7.8 authentication failed` to AUTH while `refuse` holds.
    pub fn refuse_login(&self, refuse: bool) {
        self.state.lock().unwrap().refuse_login = refuse;
    }

    /// How many AUTH commands arrived.
    pub fn logins(&self) -> usize {
        self.state.lock().unwrap().logins
    }

    /// Offers PIPELINING in the EHLO reply (the default) or not, from the next EHLO on.
    pub fn pipelining(&self, offer: bool) {
        self.state.lock().unwrap().lockstep = !offer;
    }

    /// How many MAIL commands arrived in one piece with the rest of their envelope up to
    /// DATA, that is, pipelined.
    pub fn pipelined(&self) -> usize {
        self.state.lock().unwrap().pipelined
    }

    /// How many envelopes (MAIL up to DATA) had arrived with the content before them, in
    /// the same write: already waiting when that content's final dot was read.
    pub fn ahead(&self) -> usize {
        self.state.lock().unwrap().ahead
    }

    /// How many RSET commands arrived.
    pub fn resets(&self) -> usize {
        self.state.lock().unwrap().resets
    }

    /// Forgets planned failures, rejected recipients and stalls (received messages stay).
    pub fn behave(&self) {
        let mut s = self.state.lock().unwrap();
        s.rcpt_limit = None;
        s.close_after_data = 0;
        s.close_after_reply = 0;
        s.refuse_login = false;
        s.failures.clear();
        s.rejected.clear();
        s.stall = None;
        s.stall_after = 0;
    }

    /// Stops listening and drops every open connection. Received messages are kept.
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind same port");
        self.task = Some(tokio::spawn(serve(listener, self.state.clone())));
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Accepts until aborted; aborting drops the JoinSet, which aborts every connection.
async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    state.lock().unwrap().connections += 1;
                    conns.spawn(session(stream, state.clone()));
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Takes the planned failure for `stage`, if any, counting one message.
fn planned(state: &Mutex<State>, stage: Stage) -> Option<String> {
    let mut s = state.lock().unwrap();
    let i = s.failures.iter().position(|f| f.0 == stage && f.3 > 0)?;
    s.failures[i].3 -= 1;
    let (_, code, text, _) = &s.failures[i];
    Some(format!("{code} {text}"))
}

fn path_arg(line: &str) -> String {
    let rest = line.split_once(':').map(|(_, r)| r).unwrap_or("").trim();
    let addr = rest.split_whitespace().next().unwrap_or("");
    addr.trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

/// Whether the bytes already read but not yet handled hold a whole DATA command.
fn data_waiting(buffered: &[u8]) -> bool {
    buffered
        .split(|b| *b == b'\n')
        .any(|l| l.eq_ignore_ascii_case(b"DATA\r"))
}

async fn session(stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    while state.lock().unwrap().hold_greetings {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    w.write_all(b"220 test.smtp.example ESMTP ready\r\n")
        .await?;
    // Replies held while more commands are already waiting (RFC 2920: one write per group).
    let mut out: Vec<u8> = Vec::new();
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    // A RCPT failure counts once per message, however many recipients it has.
    let mut rcpt_failure: Option<Option<String>> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let verb = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" if state.lock().unwrap().lockstep => {
                "250-test.smtp.example\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760".into()
            }
            "EHLO" => {
                "250-test.smtp.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760".into()
            }
            "HELO" => "250 test.smtp.example".into(),
            "AUTH" => {
                let mut s = state.lock().unwrap();
                s.logins += 1;
                if s.refuse_login {
                    "535 5.7.8 authentication failed".into()
                } else {
                    "235 2.7.0 authenticated".into()
                }
            }
            "NOOP" => "250 2.0.0 OK".into(),
            "RSET" => {
                state.lock().unwrap().resets += 1;
                from = None;
                to.clear();
                rcpt_failure = None;
                "250 2.0.0 OK".into()
            }
            "QUIT" => {
                out.extend_from_slice(b"221 2.0.0 bye\r\n");
                w.write_all(&out).await?;
                return Ok(());
            }
            "MAIL" => match planned(&state, Stage::Mail) {
                Some(f) => f,
                None => {
                    if data_waiting(r.buffer()) {
                        state.lock().unwrap().pipelined += 1;
                    }
                    from = Some(path_arg(&text));
                    to.clear();
                    rcpt_failure = None;
                    "250 2.1.0 OK".into()
                }
            },
            "RCPT" if from.is_none() => "503 5.5.1 MAIL first".into(),
            "RCPT" => {
                let addr = path_arg(&text);
                let failure = rcpt_failure
                    .get_or_insert_with(|| planned(&state, Stage::Rcpt))
                    .clone();
                let limit = state.lock().unwrap().rcpt_limit;
                if let Some(f) = failure {
                    f
                } else if limit.is_some_and(|n| to.len() >= n) {
                    "452 4.5.3 too many recipients".into()
                } else if state
                    .lock()
                    .unwrap()
                    .rejected
                    .contains(&addr.to_lowercase())
                {
                    format!("550 5.1.1 <{addr}>: no such user")
                } else {
                    to.push(addr);
                    "250 2.1.5 OK".into()
                }
            }
            "DATA" if to.is_empty() => "503 5.5.1 RCPT first".into(),
            "DATA" => {
                out.extend_from_slice(b"354 end with <CRLF>.<CRLF>\r\n");
                w.write_all(&out).await?;
                out.clear();
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if r.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" || line == b".\n" {
                        let waiting = r.buffer();
                        if waiting.len() >= 4
                            && waiting[..4].eq_ignore_ascii_case(b"MAIL")
                            && data_waiting(waiting)
                        {
                            state.lock().unwrap().ahead += 1;
                        }
                        break;
                    }
                    let l = if line.starts_with(b".") {
                        &line[1..]
                    } else {
                        &line[..]
                    };
                    data.extend_from_slice(l);
                }
                let message = Received {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                };
                let stall = {
                    let mut s = state.lock().unwrap();
                    s.attempts.push(message.clone());
                    if s.close_after_data > 0 {
                        s.close_after_data -= 1;
                        return Ok(());
                    }
                    if s.stall.is_some() && s.stall_after > 0 {
                        s.stall_after -= 1;
                        None
                    } else {
                        let p = s.stall.take();
                        s.stalls += usize::from(p.is_some());
                        p
                    }
                };
                if let Some(p) = stall {
                    tokio::time::sleep(p).await;
                }
                let reply = match planned(&state, Stage::Data) {
                    Some(f) => f,
                    None => {
                        state.lock().unwrap().received.push(message);
                        "250 2.0.0 OK queued".into()
                    }
                };
                from = None;
                to.clear();
                rcpt_failure = None;
                let close = {
                    let mut s = state.lock().unwrap();
                    let close = s.close_after_reply > 0;
                    s.close_after_reply -= usize::from(close);
                    close
                };
                if close {
                    out.extend_from_slice(reply.as_bytes());
                    out.extend_from_slice(b"\r\n");
                    w.write_all(&out).await?;
                    return Ok(());
                }
                reply
            }
            _ => "502 5.5.2 command not recognized".into(),
        };
        out.extend_from_slice(reply.as_bytes());
        out.extend_from_slice(b"\r\n");
        if r.buffer().is_empty() {
            w.write_all(&out).await?;
            out.clear();
        }
    }
}
