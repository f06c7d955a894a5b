// A guest-agent command sent to QEMU's monitor must not compile.
async fn mixup(qmp: &qapi_client::Qmp) {
    let _ = qmp.execute(&qga_types::commands::GuestPing {}).await;
}

fn mixup_blocking(qmp: &qapi_client::blocking::Qmp) {
    let _ = qmp.execute(&qga_types::commands::GuestPing {});
}

fn main() {
    let _ = (mixup, mixup_blocking);
}
