//! The change hub: one fan-out point fed by apply on every node. Long-poll listeners, gRPC
//! pushes and blocking queries subscribe here; nothing here can block apply (a receiver that
//! falls behind sees `Lagged` and must re-read the store).

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::sync::watch;

use super::command::Change;

/// Changes made by one applied log entry.
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    pub index: u64,
    pub changes: Vec<Change>,
}

#[derive(Clone)]
pub struct ChangeHub {
    events: broadcast::Sender<Arc<ChangeEvent>>,
    applied: Arc<watch::Sender<u64>>,
}

impl ChangeHub {
    pub fn new(applied_index: u64) -> ChangeHub {
        let (events, _) = broadcast::channel(4096);
        let (applied, _) = watch::channel(applied_index);
        ChangeHub { events, applied: Arc::new(applied) }
    }

    /// Called by apply after the entry's batch is written.
    pub fn publish(&self, index: u64, changes: Vec<Change>) {
        if !changes.is_empty() && self.events.receiver_count() > 0 {
            // An error only means nobody is subscribed.
            let _ = self.events.send(Arc::new(ChangeEvent { index, changes }));
        }
        self.applied.send_if_modified(|cur| {
            if index > *cur {
                *cur = index;
                true
            } else {
                false
            }
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeEvent>> {
        self.events.subscribe()
    }

    /// Watch of the last applied log index; only moves forward.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    pub fn applied_index(&self) -> u64 {
        *self.applied.borrow()
    }
}
