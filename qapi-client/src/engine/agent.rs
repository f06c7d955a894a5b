//! The guest agent's sync, and sessions with agents that do not echo ids.
//!
//! qemu-ga copies a request's `id` into its reply only since QEMU 2.12;
//! older agents (still in long-lived guests) answer without it, and
//! libvirt drives every agent that way.  Whether this one does is found
//! out at every sync, from the sync's own reply, never guessed from a
//! version:
//!
//! - The sync sends 0xFF (the agent drops any partial request it holds)
//!   and `guest-sync-delimited` with a random value and a random request
//!   id ([`random_sync_id`], outside the range of the session's counter).
//!   The agent answers every request before it in order, then 0xFF and the
//!   sync's reply.  Until that reply comes, replies without an id that do
//!   not carry the value are stale (an earlier client's, or a call that
//!   gave up) and dropped ([`Shared::route_without_id`]); a reply with the
//!   sync's id is the sync's reply.
//! - If the sync's reply came without an id, the agent does not echo ids:
//!   calls then take turns ([`Shared::serial_turn`]), and a reply without
//!   an id belongs to the one call in flight.  A call that gives up after
//!   its request went out leaves a reply that may still come, so the next
//!   call syncs first, which drops it.
//! - With an agent that echoes ids, calls are pipelined and matched by id,
//!   as with QEMU.

use std::time::Duration;

use tokio::time::Instant;
use tracing::debug;

use crate::error::{Error, Result};

use super::calls::random_u64;
use super::{random_sync_id, Engine, Request, SyncWait};

impl Engine {
    /// Synchronises with the guest agent within `timeout` (see the module
    /// docs), taking its turn first when calls take turns.
    pub(crate) async fn sync(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let request = sync_request(&[], timeout);
        let _turn = if self.shared.serial() {
            Some(self.take_turn(&request, Some(deadline)).await?)
        } else {
            None
        };
        self.sync_in_turn(Some(deadline), Some(timeout)).await
    }

    /// The sync itself, by a call that has its turn (or needs none).
    pub(super) async fn sync_in_turn(
        &self,
        deadline: Option<Instant>,
        timeout: Option<Duration>,
    ) -> Result<()> {
        let value = (random_u64() >> 12) as i64;
        let id = random_sync_id();
        let arguments = format!("{{\"id\":{value}}}");
        let request = sync_request(arguments.as_bytes(), timeout.unwrap_or_default());
        let request = Request { timeout, ..request };
        self.lock_calls().sync = Some(SyncWait {
            id,
            value,
            answered_without_id: false,
        });
        // Ends the sync also if this future is dropped.
        let _ended = SyncEnds(self);
        let reply = self.call_with_id(&request, id, deadline).await;
        let sync = {
            let mut calls = self.lock_calls();
            let sync = calls.sync.take();
            if reply.is_ok() {
                calls.needs_sync = false;
            }
            sync
        };
        let echoed: i64 = self.decode("guest-sync-delimited", &reply?)?;
        if echoed != value {
            return Err(Error::Protocol(
                format!("guest-sync-delimited answered {echoed}, expected {value}").into(),
            ));
        }
        let echoes_ids = !sync.is_some_and(|sync| sync.answered_without_id);
        if echoes_ids != self.shared.echoes_ids() {
            debug!(
                echoes_ids,
                "guest agent {} request ids: calls {}",
                if echoes_ids {
                    "echoes"
                } else {
                    "does not echo"
                },
                if echoes_ids {
                    "are pipelined"
                } else {
                    "take turns"
                }
            );
        }
        self.shared
            .echoes_ids
            .store(echoes_ids, std::sync::atomic::Ordering::Release);
        debug!(sync_value = value, "guest agent synchronised");
        Ok(())
    }

    /// Whether the agent echoed the request id at the last sync (QEMU
    /// always does).
    pub(crate) fn echoes_ids(&self) -> bool {
        self.shared.echoes_ids()
    }
}

/// Clears the session's [`SyncWait`] when a sync ends.
struct SyncEnds<'a>(&'a Engine);

impl Drop for SyncEnds<'_> {
    fn drop(&mut self) {
        self.0.lock_calls().sync = None;
    }
}

/// The sync's request, `arguments` aside.
fn sync_request(arguments: &[u8], timeout: Duration) -> Request<'_> {
    Request {
        name: "guest-sync-delimited",
        arguments: Some(arguments),
        oob: false,
        fds: &[],
        prefix: b"\xff",
        expect_reply: true,
        timeout: Some(timeout),
    }
}
