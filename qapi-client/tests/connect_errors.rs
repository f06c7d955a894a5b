//! A failed connection names what it tried to connect to.

use qapi_client::{blocking, Error, Qga, Qmp, QmpBuilder};

fn assert_names(error: Error, address: &str) {
    let text = error.to_string();
    assert!(
        matches!(&error, Error::Connect { address: a, .. } if &**a == address),
        "{error:?}"
    );
    assert!(
        text.starts_with(&format!("can't connect to {address}: ")),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_unix_socket_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let address = path.display().to_string();
    assert_names(Qmp::connect_unix(&path).await.unwrap_err(), &address);
    assert_names(Qga::connect_unix(&path).await.unwrap_err(), &address);
}

#[test]
fn a_missing_unix_socket_is_named_by_the_blocking_client() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qga.sock");
    let address = path.display().to_string();
    assert_names(blocking::Qmp::connect_unix(&path).unwrap_err(), &address);
    assert_names(blocking::Qga::connect_unix(&path).unwrap_err(), &address);
}

#[tokio::test]
async fn a_refused_tcp_connection_names_the_address() {
    // A port that was just free: nobody listens on it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let error = QmpBuilder::new()
        .connect_tcp(address)
        .await
        .expect_err("nobody listens");
    assert_names(error, &address.to_string());
}
