//! The listener's errors.

/// What can go wrong setting up a listener.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// Binding or inspecting a socket failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}
