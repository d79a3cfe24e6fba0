//! The `tributary-operator` binary: flags, logging, the kube client (rate limited), leader
//! election, the HTTP endpoints and both controllers, with graceful shutdown on SIGTERM.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use kube::client::ClientBuilder;
use tokio::sync::watch;
use tower::limit::ConcurrencyLimitLayer;
use tributary_operator::apicalls::CountRequestsLayer;
use tributary_operator::config::Config;
use tributary_operator::controller::{self, Options};
use tributary_operator::jobs::PodSettings;
use tributary_operator::leader::Elector;
use tributary_operator::metrics::Metrics;
use tributary_operator::ratelimit::RateLimitLayer;
use tributary_operator::server::{self, Health};

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube=warn,tower=warn,hyper=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "text" {
        builder.init();
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

// One thread: the operator needs a fraction of a core even when it keeps the API server
// saturated (`make bench-operator`), and with a pool of workers most of its CPU went to
// waking and switching between them for each small watch event and response (a third of
// its samples in `finish_task_switch`), CPU taken from the API server on a small node.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    init_logging(&config.log_format);
    let kube_config = kube::Config::infer()
        .await
        .context("loading the Kubernetes client configuration")?;
    let metrics = Metrics::default();
    let client = ClientBuilder::try_from(kube_config)
        .context("building the Kubernetes client")?
        .with_layer(&RateLimitLayer::new(config.kube_qps, config.kube_burst))
        .with_layer(&CountRequestsLayer::new(
            metrics.kube_requests.clone(),
            metrics.kube_request_duration.clone(),
        ))
        .with_layer(&ConcurrencyLimitLayer::new(
            config.kube_max_in_flight.max(1),
        ))
        .build();

    let health = Health::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    tokio::spawn({
        let stop_tx = stop_tx.clone();
        async move {
            terminated().await;
            tracing::info!("shutting down");
            let _ = stop_tx.send(true);
        }
    });
    let server = tokio::spawn(server::serve(
        config.metrics_addr,
        health.clone(),
        metrics.clone(),
        stopped(),
    ));

    let identity = config.identity();
    let elector = config.leader_elect.then(|| {
        Elector::new(
            client.clone(),
            &config.lease_namespace,
            &config.lease_name,
            identity.clone(),
            Duration::from_secs(u64::from(config.lease_duration_seconds)),
        )
    });
    if let Some(elector) = &elector {
        tracing::info!(identity = %identity, lease = %config.lease_name, "waiting for the Lease");
        // Standing by is healthy: report ready so a rollout can proceed.
        health.ready.store(true, Ordering::Relaxed);
        tokio::select! {
            _ = elector.acquire() => {},
            _ = stopped() => { return Ok(()); }
        }
        health.ready.store(false, Ordering::Relaxed);
        tracing::info!(identity = %identity, "acquired the Lease; starting controllers");
    }
    metrics.leader.set(1);

    let options = Options {
        namespace: config.namespace.clone(),
        settings: PodSettings {
            runner_image: config.runner_image.clone(),
            image_pull_policy: config.runner_image_pull_policy.clone(),
            host_network: config.host_network,
            job_ttl_seconds: config.job_ttl_seconds,
            check_job_ttl_seconds: config.check_job_ttl_seconds,
            node_selector: config.runner_node_selector.clone(),
        },
        concurrency: config.concurrency,
        run_start_concurrency: config.run_start_concurrency,
        task_start_events: config.task_start_events,
        instance: identity.clone(),
        openlineage: config.openlineage(),
    };
    if let Some(ol) = &options.openlineage {
        // Host only: a path or query could carry a token; the key itself is never logged.
        tracing::info!(
            host = ol.url.host_str().unwrap_or_default(),
            namespace = %ol.namespace,
            api_key = ol.api_key.is_some(),
            "sending OpenLineage RunEvents"
        );
    }
    let ready_flag = health.ready.clone();
    let controllers = controller::run(
        client.clone(),
        options,
        metrics.clone(),
        stopped(),
        move || {
            ready_flag.store(true, Ordering::Relaxed);
        },
    );

    let mut lost_leadership = false;
    match &elector {
        Some(elector) => {
            tokio::select! {
                _ = controllers => {},
                _ = elector.keep() => { lost_leadership = true; }
            }
        }
        None => controllers.await,
    }
    metrics.leader.set(0);
    if lost_leadership {
        // Stop acting at once; the pod restarts and stands by for the Lease again.
        tracing::error!("lost the Lease; exiting");
        std::process::exit(1);
    }
    if let Some(elector) = &elector {
        elector.release().await;
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}
