//! The one stop signal of the service: requested by SIGTERM/SIGINT (or a test), polled
//! between emails by a sweep and awaited by the daemon loop.
//!
//! A `tokio::sync::watch` channel holds the number of stop requests, so the signal task can
//! tell the first request (finish what is in flight) from the second (exit at once).

use std::sync::Arc;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Shutdown {
    requests: Arc<watch::Sender<u32>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            requests: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks everything holding a clone of this to stop. Returns how many requests there
    /// have been, this one included.
    pub fn request(&self) -> u32 {
        let mut count = 0;
        self.requests.send_modify(|n| {
            *n = n.saturating_add(1);
            count = *n;
        });
        count
    }

    /// A stop has been requested.
    pub fn is_requested(&self) -> bool {
        *self.requests.borrow() > 0
    }

    /// Resolves once a stop has been requested (at once if it already was).
    pub async fn requested(&self) {
        let mut rx = self.requests.subscribe();
        // The sender lives in `self`: the channel cannot close while this waits.
        let _ = rx.wait_for(|n| *n > 0).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn requests_are_counted() {
        let s = Shutdown::new();
        assert!(!s.is_requested());
        assert_eq!(s.request(), 1);
        assert!(s.clone().is_requested());
        assert_eq!(s.request(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_wakes_on_a_request_from_a_clone() {
        let s = Shutdown::new();
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.requested().await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiter.is_finished());
        s.request();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the waiter woke up")
            .expect("the waiter did not panic");
        // Already requested: resolves at once.
        s.requested().await;
    }
}
