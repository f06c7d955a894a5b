//! Where a QMP monitor or a guest agent's channel listens, as people write
//! it on a command line or in a configuration file.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A Unix socket path or a TCP `host:port`, read from text.
///
/// The rules, so that what QEMU's own options say can be pasted:
///
/// - `unix:PATH` is a Unix socket and `tcp:HOST:PORT` a TCP address, as in
///   `-qmp unix:/run/vm.qmp,server=on` or `-chardev socket,…` (options
///   after a comma are left out);
/// - otherwise text with no `/` that ends in `:PORT` (a number that fits
///   a port) is TCP: `localhost:4444`, `[::1]:4444`, `10.0.0.7:4444`;
/// - anything else is a Unix socket path: `vm.qmp`, `/run/vm.qmp`,
///   `./a:1`.
///
/// ```
/// use qapi_client::Address;
///
/// assert_eq!("localhost:4444".parse(), Ok(Address::Tcp("localhost:4444".into())));
/// assert_eq!("/run/vm.qmp".parse(), Ok(Address::Unix("/run/vm.qmp".into())));
/// assert_eq!(
///     "unix:/run/vm.qmp,server=on,wait=off".parse(),
///     Ok(Address::Unix("/run/vm.qmp".into()))
/// );
/// ```
///
/// Connect with [`QmpBuilder::connect`](crate::QmpBuilder::connect),
/// [`QgaBuilder::connect`](crate::QgaBuilder::connect) or the blocking
/// clients' `connect_with`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A Unix socket's path.
    Unix(PathBuf),
    /// A TCP address, `host:port`, resolved when connecting.
    Tcp(String),
}

/// Why text is not an [`Address`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a socket address: {why}")]
pub struct AddressError {
    text: String,
    why: &'static str,
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Address, AddressError> {
        let error = |why| AddressError {
            text: text.to_owned(),
            why,
        };
        if text.is_empty() {
            return Err(error("it is empty"));
        }
        if let Some(path) = text.strip_prefix("unix:") {
            let path = without_options(path);
            if path.is_empty() {
                return Err(error("`unix:` needs a path"));
            }
            return Ok(Address::Unix(path.into()));
        }
        if let Some(address) = text.strip_prefix("tcp:") {
            let address = without_options(address);
            return match split_port(address) {
                Some(("", _)) => Err(error("`tcp:` needs a host before the port")),
                Some(_) => Ok(Address::Tcp(address.to_owned())),
                None => Err(error("`tcp:` needs HOST:PORT")),
            };
        }
        match split_port(text) {
            Some((host, _)) if !host.is_empty() && !text.contains('/') => {
                Ok(Address::Tcp(text.to_owned()))
            }
            _ => Ok(Address::Unix(text.into())),
        }
    }
}

/// The address in QEMU's option syntax, whose options follow a comma.
fn without_options(text: &str) -> &str {
    text.split(',').next().unwrap_or(text)
}

/// `host` and `port` of `host:port`, when the text after the last colon is
/// a port number.
fn split_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    Some((host, port.parse().ok()?))
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "{}", path.display()),
            Address::Tcp(address) => f.write_str(address),
        }
    }
}

impl From<PathBuf> for Address {
    fn from(path: PathBuf) -> Address {
        Address::Unix(path)
    }
}

impl From<&std::path::Path> for Address {
    fn from(path: &std::path::Path) -> Address {
        Address::Unix(path.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Address, AddressError> {
        text.parse()
    }

    #[test]
    fn tcp_and_unix_by_shape() {
        assert_eq!(
            parse("localhost:4444"),
            Ok(Address::Tcp("localhost:4444".into()))
        );
        assert_eq!(parse("[::1]:4444"), Ok(Address::Tcp("[::1]:4444".into())));
        assert_eq!(parse("127.0.0.1:1"), Ok(Address::Tcp("127.0.0.1:1".into())));
        assert_eq!(parse("vm.qmp"), Ok(Address::Unix("vm.qmp".into())));
        assert_eq!(parse("./a:1"), Ok(Address::Unix("./a:1".into())));
        // Not a port: too large, or not a number.
        assert_eq!(parse("host:99999"), Ok(Address::Unix("host:99999".into())));
        assert_eq!(parse("vm:qmp"), Ok(Address::Unix("vm:qmp".into())));
        assert_eq!(parse(":4444"), Ok(Address::Unix(":4444".into())));
    }

    #[test]
    fn qemu_option_syntax() {
        assert_eq!(
            parse("unix:/run/vm.qmp,server=on,wait=off"),
            Ok(Address::Unix("/run/vm.qmp".into()))
        );
        assert_eq!(
            parse("tcp:localhost:4444,server=on"),
            Ok(Address::Tcp("localhost:4444".into()))
        );
        assert_eq!(parse("unix:a:1"), Ok(Address::Unix("a:1".into())));
    }

    #[test]
    fn errors_say_what_is_missing() {
        assert_eq!(
            parse("").unwrap_err().to_string(),
            "\"\" is not a socket address: it is empty"
        );
        assert!(parse("unix:")
            .unwrap_err()
            .to_string()
            .contains("needs a path"));
        assert!(parse("tcp:localhost")
            .unwrap_err()
            .to_string()
            .contains("HOST:PORT"));
        assert!(parse("tcp::4444")
            .unwrap_err()
            .to_string()
            .contains("needs a host"));
    }

    #[test]
    fn display_is_what_was_meant() {
        assert_eq!(
            parse("unix:/run/vm.qmp").unwrap().to_string(),
            "/run/vm.qmp"
        );
        assert_eq!(parse("tcp:h:1").unwrap().to_string(), "h:1");
    }
}
