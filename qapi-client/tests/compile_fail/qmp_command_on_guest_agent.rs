// A QMP command sent to a guest agent must not compile.
async fn mixup(qga: &qapi_client::Qga) {
    let _ = qga.execute(&qapi_types::commands::QueryStatus {}).await;
}

fn mixup_blocking(qga: &qapi_client::blocking::Qga) {
    let _ = qga.execute(&qapi_types::commands::QueryStatus {});
}

fn main() {
    let _ = (mixup, mixup_blocking);
}
