//! A fault-injecting HTTP proxy on 127.0.0.1: forwards EC2/STS requests to the
//! local endpoint, except those a rule picks, which get HTTP 500 with an EC2
//! error body. Rules see the request's region (from the SigV4 credential
//! scope) and action (from the form body), e.g. "DescribeInstances in
//! us-west-2 fails".

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Decides whether a request (region, action) fails.
pub type Rule = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// The error a picked request gets.
#[derive(Debug, Clone)]
pub struct Fault {
    /// HTTP status.
    pub status: u16,
    /// EC2 error code.
    pub code: String,
}

impl Default for Fault {
    fn default() -> Self {
        Fault {
            status: 500,
            code: "InternalError".into(),
        }
    }
}

/// A proxy that holds the requests a rule picks until released: a test can
/// act (e.g. kill the client) at a known point instead of after a sleep.
pub struct HoldingProxy {
    /// URL to give fleetform as its endpoint.
    pub url: String,
    seen: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
    release: std::sync::mpsc::Sender<()>,
}

impl HoldingProxy {
    /// Starts a proxy to `upstream` that holds every request `rule` picks.
    pub fn start(upstream: &str, rule: Rule) -> std::io::Result<HoldingProxy> {
        let (seen_tx, seen) = std::sync::mpsc::channel::<String>();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = std::sync::Mutex::new(release_rx);
        // Holding is a rule that waits for the release, then lets the request through.
        let hold = move |region: &str, action: &str| {
            if rule(region, action) {
                let _ = seen_tx.send(action.to_string());
                let waiting = release_rx.lock().unwrap_or_else(|p| p.into_inner());
                // Bounded: a test that never releases does not hang the proxy forever.
                let _ = waiting.recv_timeout(Duration::from_secs(120));
            }
            false
        };
        let proxy = FaultProxy::start(upstream, Arc::new(hold))?;
        Ok(HoldingProxy {
            url: proxy.url,
            seen: std::sync::Mutex::new(seen),
            release,
        })
    }

    /// Waits (bounded) until a picked request arrives; its action, or `None` on timeout.
    pub fn wait_for_held(&self, limit: Duration) -> Option<String> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recv_timeout(limit)
            .ok()
    }

    /// Lets one held request through to the upstream.
    pub fn release_one(&self) {
        let _ = self.release.send(());
    }
}

/// A running proxy; it stops when the test binary exits.
pub struct FaultProxy {
    /// URL to give fleetform as its endpoint.
    pub url: String,
    injected: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (an `http://127.0.0.1:PORT` URL) that fails what `rule` picks.
    pub fn start(upstream: &str, rule: Rule) -> std::io::Result<FaultProxy> {
        Self::start_with(upstream, rule, Fault::default())
    }

    /// Like [`FaultProxy::start`], answering picked requests with `fault`.
    pub fn start_with(upstream: &str, rule: Rule, fault: Fault) -> std::io::Result<FaultProxy> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let injected = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&injected);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, rule, counter) =
                    (upstream.clone(), Arc::clone(&rule), Arc::clone(&counter));
                let fault = fault.clone();
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &rule, &fault, &counter);
                });
            }
        });
        Ok(FaultProxy { url, injected })
    }

    /// How many requests were failed on purpose so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::Relaxed)
    }
}

/// One HTTP/1.1 message: head (start line + headers) and body.
struct Message {
    head: String,
    body: Vec<u8>,
}

fn read_message(reader: &mut impl BufRead) -> std::io::Result<Option<Message>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Message { head, body }))
}

/// Rewrites the head so the connection closes after this message.
fn closing(head: &str) -> String {
    let mut out: String = head
        .lines()
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    out.push_str("Connection: close\r\n\r\n");
    out
}

fn serve(
    client: TcpStream,
    upstream: &str,
    rule: &Rule,
    fault: &Fault,
    injected: &AtomicUsize,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let Some(request) = read_message(&mut reader)? else {
        return Ok(());
    };
    let body = String::from_utf8_lossy(&request.body);
    let action = body
        .split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or_default()
        .to_string();
    // "Credential=KEY/DATE/REGION/SERVICE/aws4_request"
    let region = request
        .head
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or_default()
        .to_string();
    let mut client = client;
    if rule(&region, &action) {
        injected.fetch_add(1, Ordering::Relaxed);
        let body = format!(
            "<Response><Errors><Error><Code>{}</Code><Message>injected fault: {action} in {region}</Message></Error></Errors><RequestID>fault</RequestID></Response>",
            fault.code
        );
        write!(
            client,
            "HTTP/1.1 {} Injected\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            fault.status,
            body.len()
        )?;
        return client.flush();
    }
    let mut server = TcpStream::connect(upstream)?;
    server.set_read_timeout(Some(Duration::from_secs(60)))?;
    server.write_all(closing(&request.head).as_bytes())?;
    server.write_all(&request.body)?;
    let mut response_reader = BufReader::new(server);
    let Some(response) = read_message(&mut response_reader)? else {
        return Ok(());
    };
    client.write_all(closing(&response.head).as_bytes())?;
    client.write_all(&response.body)?;
    client.flush()
}
