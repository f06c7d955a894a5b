//! Reading the client's requests in fake peers, with qapi-testkit's
//! reader (requests are found by JSON structure: the client ends one with
//! its closing brace, not a newline).  `None` at the end of the stream or
//! on a broken one: a fake just stops.

use qapi_testkit::wire;
use serde_json::Value;

#[derive(Default)]
pub struct Requests(wire::Requests);

impl Requests {
    pub fn new() -> Requests {
        Requests::default()
    }

    /// The next request from a blocking reader.
    pub fn read(&mut self, reader: &mut impl std::io::Read) -> Option<Value> {
        self.0.read_blocking(reader).ok().flatten()
    }

    /// The next request from an async reader.
    pub async fn read_async(
        &mut self,
        reader: &mut (impl tokio::io::AsyncRead + Unpin),
    ) -> Option<Value> {
        self.0.read(reader).await.ok().flatten()
    }
}
