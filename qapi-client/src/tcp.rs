//! TCP connections, with errors that name the address.

use tokio::net::{lookup_host, TcpStream, ToSocketAddrs};

use crate::error::{Error, Result};

/// Connects to the first of `address`'s resolved addresses that accepts,
/// with Nagle's algorithm off (requests are small and each waits for its
/// reply).  A failure names the address tried last.
pub(crate) async fn connect(address: impl ToSocketAddrs) -> Result<TcpStream> {
    let mut last = None;
    for candidate in lookup_host(address).await? {
        match TcpStream::connect(candidate).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(error) => last = Some(Error::connect(candidate, error)),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::Io(std::sync::Arc::new(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the address resolved to nothing",
        )))
    }))
}
