//! Where a sequence's events go: a bounded queue the engine never blocks on.

use llorch_core::wire::events::TaskEvent;

/// Why an event could not be delivered.
#[derive(Debug)]
pub enum SinkError {
    /// The reader is behind: keep the event and try again later.
    Full(TaskEvent),
    /// The reader is gone: the job is cancelled.
    Closed,
}

/// A sequence's event consumer. `try_send` must never block.
pub trait EventSink: Send {
    /// Delivers an event, or says why not.
    fn try_send(&mut self, ev: TaskEvent) -> Result<(), SinkError>;
}

impl EventSink for tokio::sync::mpsc::Sender<TaskEvent> {
    fn try_send(&mut self, ev: TaskEvent) -> Result<(), SinkError> {
        use tokio::sync::mpsc::error::TrySendError;
        tokio::sync::mpsc::Sender::try_send(self, ev).map_err(|e| match e {
            TrySendError::Full(ev) => SinkError::Full(ev),
            TrySendError::Closed(_) => SinkError::Closed,
        })
    }
}

/// Collects events in memory (CLI, tests).
#[derive(Debug, Default, Clone)]
pub struct VecSink(pub std::sync::Arc<parking_lot::Mutex<Vec<TaskEvent>>>);

impl EventSink for VecSink {
    fn try_send(&mut self, ev: TaskEvent) -> Result<(), SinkError> {
        self.0.lock().push(ev);
        Ok(())
    }
}
