//! Unit tests of the breaker state machine and its tower service (time paused).

use super::*;
use tower::{service_fn, BoxError, Layer, Service, ServiceExt};

#[tokio::test(start_paused = true)]
async fn opens_at_threshold_then_half_opens_and_closes_on_success() {
    let breaker = CircuitBreaker::new(3, Duration::from_secs(10));
    for _ in 0..2 {
        breaker.try_acquire().unwrap().failure();
        assert_eq!(breaker.state(), CircuitState::Closed);
    }
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), CircuitState::Open);
    let err = breaker.try_acquire().unwrap_err();
    assert_eq!(err.retry_after, Duration::from_secs(10));

    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(breaker.try_acquire().is_err());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    let probe = breaker.try_acquire().unwrap();
    // Only one probe at a time.
    assert!(breaker.try_acquire().is_err());
    probe.success();
    assert_eq!(breaker.state(), CircuitState::Closed);
    let counters = breaker.counters();
    assert_eq!(
        (
            counters.failures,
            counters.successes,
            counters.opened,
            counters.rejected
        ),
        (3, 1, 1, 3)
    );
}

#[tokio::test(start_paused = true)]
async fn failed_probe_reopens_for_a_full_period() {
    let breaker = CircuitBreaker::new(1, Duration::from_secs(5));
    breaker.try_acquire().unwrap().failure();
    tokio::time::advance(Duration::from_secs(5)).await;
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), CircuitState::Open);
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(breaker.state(), CircuitState::Open);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_probe_frees_the_slot() {
    let breaker = CircuitBreaker::new(1, Duration::from_secs(1));
    breaker.try_acquire().unwrap().failure();
    tokio::time::advance(Duration::from_secs(1)).await;
    drop(breaker.try_acquire().unwrap());
    assert!(breaker.try_acquire().is_ok());
}

#[tokio::test(start_paused = true)]
async fn success_resets_the_consecutive_count() {
    let breaker = CircuitBreaker::new(2, Duration::from_secs(1));
    breaker.try_acquire().unwrap().failure();
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(breaker.counters().consecutive_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn service_fails_fast_while_open_and_recovers() {
    let breaker = CircuitBreaker::new(2, Duration::from_secs(30));
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    // Down for the first two calls, healthy afterwards.
    let inner = service_fn(move |_: ()| {
        let ok = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 2;
        async move {
            if ok {
                Ok::<_, BoxError>("ok")
            } else {
                Err::<&str, BoxError>("down".into())
            }
        }
    });
    let svc = CircuitBreakerLayer::new(breaker.clone()).layer(inner);
    assert!(svc.clone().oneshot(()).await.is_err());
    assert!(svc.clone().oneshot(()).await.is_err());
    let err = svc.clone().oneshot(()).await.unwrap_err();
    assert!(err.downcast_ref::<CircuitOpenError>().is_some(), "{err}");
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "an open circuit must not call through"
    );

    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(svc.clone().oneshot(()).await.unwrap(), "ok");
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn errors_outside_the_predicate_do_not_open() {
    let breaker = CircuitBreaker::new(1, Duration::from_secs(30));
    let inner = service_fn(|_: ()| async { Err::<(), BoxError>("bad data".into()) });
    let svc = CircuitBreakerLayer::new(breaker.clone())
        .with_failure_predicate(|e| e.to_string() != "bad data")
        .layer(inner);
    for _ in 0..3 {
        assert!(svc.clone().oneshot(()).await.is_err());
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
}

/// An inner service that insists on tower's contract: `call` only after `poll_ready`
/// said ready (tower's `RateLimit` panics otherwise).
#[derive(Clone, Default)]
struct StrictReady {
    ready: bool,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl tower::Service<()> for StrictReady {
    type Response = ();
    type Error = BoxError;
    type Future = std::future::Ready<Result<(), BoxError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.ready = true;
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: ()) -> Self::Future {
        assert!(
            std::mem::take(&mut self.ready),
            "called without being polled ready"
        );
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::future::ready(Err("down".into()))
    }
}

#[tokio::test(start_paused = true)]
async fn the_decision_made_in_poll_ready_is_the_one_call_keeps() {
    let breaker = CircuitBreaker::new(1, Duration::from_secs(5));
    let inner = StrictReady::default();
    let calls = inner.calls.clone();
    let mut svc = CircuitBreakerLayer::new(breaker.clone()).layer(inner);
    assert!(svc.ready().await.unwrap().call(()).await.is_err());
    assert_eq!(breaker.state(), CircuitState::Open);

    // Polled ready while open: the call will be rejected, whatever happens meanwhile.
    svc.ready().await.unwrap();
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    let err = svc.call(()).await.unwrap_err();
    assert!(err.downcast_ref::<CircuitOpenError>().is_some(), "{err}");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Polled ready while half-open: the probe slot is this caller's, and the call goes
    // through even if another caller asks in between.
    svc.ready().await.unwrap();
    assert!(
        breaker.try_acquire().is_err(),
        "the probe was reserved in poll_ready"
    );
    assert!(svc.call(()).await.is_err());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        breaker.state(),
        CircuitState::Open,
        "the failed probe reopened it"
    );
}
