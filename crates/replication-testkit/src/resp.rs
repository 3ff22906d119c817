//! A minimal binary-safe RESP client over std TCP, for probes made behind the product's back
//! (raw `XADD`s of poisoned entries, `XTRIM`, `XRANGE`, `KEYS`): independent of the client
//! under test, and of everything but std, so that xtask's demo can compile the same file
//! without depending on the testkit.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a probe waits to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a probe waits for its reply.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Simple(String),
    /// `-ERR ...`.
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$n` (None for the null bulk string).
    Bulk(Option<Vec<u8>>),
    /// `*n` (None for the null array).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The bulk or simple string as UTF-8 (lossy), if this is one.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Reply::Simple(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(Some(items)) => items,
            _ => &[],
        }
    }

    /// A readable text form, one line per value: `+OK`, `-ERR ...` and `:n` as sent, bulk
    /// strings as their text, `(nil)` for the null bulk string, arrays as their elements'
    /// lines (nothing for an empty or null one).
    pub fn to_lines(&self) -> String {
        let mut out = String::new();
        self.push_lines(&mut out);
        out
    }

    fn push_lines(&self, out: &mut String) {
        match self {
            Reply::Simple(s) => out.push_str(&format!("+{s}\n")),
            Reply::Error(e) => out.push_str(&format!("-{e}\n")),
            Reply::Int(n) => out.push_str(&format!(":{n}\n")),
            Reply::Bulk(Some(b)) => {
                out.push_str(&String::from_utf8_lossy(b));
                out.push('\n');
            }
            Reply::Bulk(None) => out.push_str("(nil)\n"),
            Reply::Array(items) => {
                for item in items.iter().flatten() {
                    item.push_lines(out);
                }
            }
        }
    }
}

/// One command as RESP: an array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg);
        request.extend_from_slice(b"\r\n");
    }
    request
}

/// Sends one command with binary arguments and reads its reply (an `-ERR` reply is
/// `Ok(Reply::Error)`; only I/O and protocol failures are errors). Not for TLS servers.
pub fn command(addr: SocketAddr, args: &[&[u8]]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.write_all(&encode(args))?;
    read_reply(&mut BufReader::new(stream))
}

/// [`command`] with text arguments.
pub fn command_str(addr: SocketAddr, args: &[&str]) -> std::io::Result<Reply> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    command(addr, &args)
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

/// Reads one reply.
pub fn read_reply(reader: &mut impl BufRead) -> std::io::Result<Reply> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(bad("truncated reply line"));
    }
    let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let number = || body.parse::<i64>().map_err(|_| bad("bad length"));
    match line[0] {
        b'+' => Ok(Reply::Simple(body)),
        b'-' => Ok(Reply::Error(body)),
        b':' => Ok(Reply::Int(number()?)),
        b'$' => {
            let n = number()?;
            if n < 0 {
                return Ok(Reply::Bulk(None));
            }
            let len = usize::try_from(n).map_err(|_| bad("bad bulk length"))?;
            let mut data = vec![0u8; len + 2];
            reader.read_exact(&mut data)?;
            data.truncate(len);
            Ok(Reply::Bulk(Some(data)))
        }
        b'*' => {
            let n = number()?;
            if n < 0 {
                return Ok(Reply::Array(None));
            }
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(read_reply(reader)?);
            }
            Ok(Reply::Array(Some(items)))
        }
        _ => Err(bad("unknown reply type")),
    }
}

/// One stream entry: id and field/value pairs.
pub type Entry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// Every entry of `stream` (`XRANGE - +`).
pub fn xrange_all(addr: SocketAddr, stream: &str) -> std::io::Result<Vec<Entry>> {
    let reply = command_str(addr, &["XRANGE", stream, "-", "+"])?;
    let mut out = Vec::new();
    for entry in reply.items() {
        let parts = entry.items();
        let id = parts
            .first()
            .and_then(Reply::text)
            .ok_or_else(|| bad("entry without id"))?;
        let flat = parts.get(1).map(Reply::items).unwrap_or_default();
        let mut fields = Vec::new();
        for pair in flat.chunks(2) {
            if let [Reply::Bulk(Some(f)), Reply::Bulk(Some(v))] = pair {
                fields.push((f.clone(), v.clone()));
            }
        }
        out.push((id, fields));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(wire: &[u8]) -> Reply {
        read_reply(&mut std::io::Cursor::new(wire)).unwrap()
    }

    #[test]
    fn encodes_binary_arguments_as_bulk_strings() {
        assert_eq!(
            encode(&[b"SET", b"k", b"a\r\nb"]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n".to_vec()
        );
    }

    #[test]
    fn parses_every_kind_of_reply_and_renders_it_as_lines() {
        let reply = parse(b"*5\r\n+OK\r\n:7\r\n$3\r\na\nb\r\n$-1\r\n*-1\r\n");
        assert_eq!(
            reply,
            Reply::Array(Some(vec![
                Reply::Simple("OK".into()),
                Reply::Int(7),
                Reply::Bulk(Some(b"a\nb".to_vec())),
                Reply::Bulk(None),
                Reply::Array(None),
            ]))
        );
        assert_eq!(reply.to_lines(), "+OK\n:7\na\nb\n(nil)\n");
        assert_eq!(parse(b"-ERR no\r\n").to_lines(), "-ERR no\n");
        assert!(read_reply(&mut std::io::Cursor::new(b"$3\r\nab")).is_err());
    }
}
