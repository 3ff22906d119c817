//! A minimal RESP client over std TCP: the demo's own window into each node's Redis,
//! independent of the code under demonstration.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A reply, simplified to what the demo reads.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `+OK`, bulk strings.
    Text(String),
    /// `:n`.
    Int(i64),
    /// `$-1` / `*-1`.
    Nil,
    /// Arrays.
    Array(Vec<Reply>),
}

/// Sends one command to `127.0.0.1:port` and reads its reply.
pub(crate) fn command(port: u16, args: &[&str]) -> Result<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connect to redis on port {port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    read(&mut BufReader::new(stream))
}

fn read(reader: &mut impl BufRead) -> Result<Reply> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end();
    let (kind, rest) = line.split_at(line.len().min(1));
    Ok(match kind {
        "+" => Reply::Text(rest.to_owned()),
        "-" => bail!("redis error: {rest}"),
        ":" => Reply::Int(rest.parse()?),
        "$" => {
            let len: i64 = rest.parse()?;
            if len < 0 {
                Reply::Nil
            } else {
                let mut buf = vec![0; usize::try_from(len)? + 2];
                reader.read_exact(&mut buf)?;
                buf.truncate(buf.len() - 2);
                Reply::Text(String::from_utf8_lossy(&buf).into_owned())
            }
        }
        "*" => {
            let n: i64 = rest.parse()?;
            if n < 0 {
                Reply::Nil
            } else {
                (0..n)
                    .map(|_| read(reader))
                    .collect::<Result<Vec<_>>>()
                    .map(Reply::Array)?
            }
        }
        _ => bail!("unexpected RESP line {line:?}"),
    })
}
