//! The I/O shell: watches, caches and the two kube-runtime Controllers (Pipelines and
//! DataSources). Each reconcile reads caches, asks a pure decision what to do, and does it:
//! create Jobs (idempotently), server-side apply status, delete Jobs, publish Events.

mod datasource;
mod pipeline;
mod start_gate;
mod status_writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, future};
use kube::api::{ListParams, VersionMatch};
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde::de::DeserializeOwned;
use tributary_core::api::{DataSource, Pipeline};
use tributary_core::naming::{LABEL_DATASOURCE, LABEL_MANAGED_BY, LABEL_PIPELINE};

use crate::cached::{CachedJob, RunnerPod};
use crate::creates::CreatesInFlight;
use crate::error::{Error, Result};
use crate::events::Publisher;
use crate::job_index::{IndexedJob, JobIndex};
use crate::jobs::PodSettings;
use crate::metrics::{ErrorLabels, Metrics, ReadLabels};
use crate::observe::{PodResult, latest};
use crate::recent::Recent;
use crate::results::{Lookup, ResultIndex};

/// Shared state of both controllers.
pub struct Context {
    pub client: Client,
    pub settings: PodSettings,
    pub metrics: Metrics,
    pub events: Publisher,
    pub task_start_events: bool,
    /// OpenLineage delivery, when an endpoint is configured.
    pub openlineage: Option<crate::openlineage_client::Sender>,
    pub pipelines: Store<Pipeline>,
    pub data_sources: Store<DataSource>,
    /// Task Jobs as bare facts by their Pipeline's uid (see `job_index`).
    pub task_jobs: Arc<Mutex<JobIndex>>,
    /// Becomes true once the task Job watch listed everything once.
    task_jobs_ready: tokio::sync::watch::Receiver<bool>,
    pub check_jobs: Store<CachedJob>,
    /// Runner results as the pod watch delivered them.
    pod_results: Arc<Mutex<ResultIndex>>,
    /// The highest resourceVersion the pod watch reflects, for reads waiting on it.
    pod_progress: tokio::sync::watch::Receiver<u64>,
    /// Pipeline statuses decided and not written yet, and the tasks writing them.
    status_writer: status_writer::StatusWriter,
    /// Admission of new runs (`--run-start-concurrency`).
    start_gate: Arc<start_gate::StartGate>,
    memory: Mutex<Memory>,
}

/// What the operator remembers between reconciles. Losing it (a restart) costs only extra
/// API calls: every decision is rebuilt from the API server's state.
struct Memory {
    /// Status this operator last applied, by object key, while the watch cache still shows an
    /// older one (which must not be built upon); dropped once the cache caught up.
    written: HashMap<String, Written>,
    /// Pod results of finished Jobs, by Job uid.
    results: HashMap<String, Option<PodResult>>,
    /// When a Job was first seen finished, by namespace/name (dispatch latency: read within
    /// seconds of the finish).
    finished_seen: Recent,
    /// Jobs created in the last seconds, by namespace/name: the watch may not show them yet.
    created: Recent,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            written: HashMap::new(),
            results: HashMap::new(),
            finished_seen: Recent::new(FINISHED_MEMORY, 5_000),
            created: Recent::new(CREATED_MEMORY, 10_000),
        }
    }
}

/// How long a created Job counts as created although the watch does not show it yet.
const CREATED_MEMORY: Duration = Duration::from_secs(30);
/// How long a Job's first sighting as finished is kept (the dispatch latency reads it within
/// seconds).
const FINISHED_MEMORY: Duration = Duration::from_secs(60);

/// A status as applied: the object's uid, the resourceVersion the write produced, and the
/// status as compact JSON (a `serde_json::Value` of it would take several times the space).
struct Written {
    uid: String,
    rv: u64,
    status: Box<[u8]>,
}

const MEMORY_LIMIT: usize = 50_000;
const RESULTS_LIMIT: usize = 512;
/// Jobs whose pod results the pod watch keeps (a result is up to 4 KiB, typically ~0.5):
/// enough for every Job finishing between two reconciles of its Pipeline.
const POD_RESULTS_LIMIT: usize = 4_096;
/// How long a result read waits for the pod watch to catch up with a finished Job before
/// asking the API server: under load the watch is a few milliseconds behind.
const POD_WATCH_GRACE: Duration = Duration::from_millis(250);

/// Least time between two status writes of one Pipeline while its run merely progresses, and
/// how long progress after a quiet spell is gathered before it is written: a layer of tasks
/// finishing one by one (and the Jobs started after it) becomes one write instead of one per
/// task, which matters most for large statuses (a 200-task Pipeline's is ~57 KiB; a 20-task
/// one's costs the API server as much CPU as several Job creates). Jobs are created at once
/// regardless; a run finishing, a phase change, or Jobs to delete are written at once.
pub const STATUS_WRITE_INTERVAL: Duration = Duration::from_secs(1);

impl Context {
    /// Remembers `status` (JSON) as applied with resourceVersion `rv`.
    fn remember_written(&self, key: String, uid: String, rv: Option<&str>, status: &[u8]) {
        let mut memory = self.memory.lock().expect("memory lock");
        if let Some(rv) = rv.and_then(|r| r.parse::<u64>().ok()) {
            if memory.written.len() > MEMORY_LIMIT {
                memory.written.clear();
            }
            memory.written.insert(
                key,
                Written {
                    uid,
                    rv,
                    status: status.into(),
                },
            );
        }
    }

    /// The status last applied, if the cache (at `rv`) does not show it yet. Once the cache
    /// caught up the remembered copy is dropped: the cache is the truth again.
    fn newest_status<T: DeserializeOwned>(
        &self,
        key: &str,
        uid: &str,
        rv: Option<&str>,
    ) -> Option<T> {
        let mut memory = self.memory.lock().expect("memory lock");
        let written = memory.written.get(key)?;
        let cached_rv = rv.and_then(|r| r.parse::<u64>().ok()).unwrap_or(0);
        if written.uid != uid || written.rv <= cached_rv {
            memory.written.remove(key);
            return None;
        }
        serde_json::from_slice(&written.status).ok()
    }

    /// A status decided for the object and not yet confirmed written, if any.
    fn pending_status<T: DeserializeOwned>(&self, key: &str, uid: &str) -> Option<T> {
        let json = self.status_writer.latest(key, uid)?;
        serde_json::from_str(&json).ok()
    }

    fn forget(&self, key: &str) {
        self.memory.lock().expect("memory lock").written.remove(key);
        self.status_writer.forget(key);
    }

    fn mark_finished_seen(&self, key: &str) {
        let mut memory = self.memory.lock().expect("memory lock");
        memory.finished_seen.note_first(key, Instant::now());
    }

    fn finished_seen(&self, key: &str) -> Option<Instant> {
        let memory = self.memory.lock().expect("memory lock");
        memory.finished_seen.get(key, Instant::now())
    }

    fn recently_created(&self, key: &str) -> bool {
        let memory = self.memory.lock().expect("memory lock");
        memory.created.get(key, Instant::now()).is_some()
    }

    fn mark_created(&self, key: &str) {
        let now = Instant::now();
        let mut memory = self.memory.lock().expect("memory lock");
        memory.created.insert(key, now, now);
    }

    /// The result of a finished Job's runner container: from the pod watch, or when it
    /// cannot tell, from the API server's watch cache at the Job's version.
    async fn job_result(&self, job: FinishedJob<'_>) -> Result<Option<PodResult>> {
        let FinishedJob {
            namespace,
            name,
            uid,
            rv: job_rv,
        } = job;
        if let Some(result) = self.memory.lock().expect("memory lock").results.get(uid) {
            return Ok(result.clone());
        }
        let job_key = key(namespace, name);
        let lookup = || {
            self.pod_results
                .lock()
                .expect("pod results lock")
                .lookup(&job_key, uid, job_rv)
        };
        let mut found = lookup();
        let mut source = "watch";
        if found == Lookup::Unknown {
            source = "watch_after_wait";
            let mut progress = self.pod_progress.clone();
            let caught_up = progress.wait_for(|rv| *rv >= job_rv);
            if tokio::time::timeout(POD_WATCH_GRACE, caught_up)
                .await
                .is_ok()
            {
                found = lookup();
            }
        }
        let known = match found {
            Lookup::Found(result) => Some(Some(result)),
            Lookup::Absent => Some(None),
            Lookup::Unknown => None,
        };
        if let Some(result) = known {
            self.metrics
                .pod_result_reads
                .get_or_create(&ReadLabels { source })
                .inc();
            return Ok(result);
        }
        self.metrics
            .pod_result_reads
            .get_or_create(&ReadLabels { source: "list" })
            .inc();
        let pods: Api<RunnerPod> = Api::namespaced(self.client.clone(), namespace);
        // Served from the API server's watch cache, not etcd (which would scan every pod of
        // the namespace): the runner terminated before the Job controller marked the Job
        // finished, so any cache state at least as new as the finished Job shows it.
        let mut params =
            ListParams::default().labels(&format!("batch.kubernetes.io/job-name={name}"));
        if job_rv > 0 {
            params = params
                .at(&job_rv.to_string())
                .matching(VersionMatch::NotOlderThan);
        }
        let list = pods
            .list(&params)
            .await
            .map_err(Error::kube("list pods of a Job"))?;
        let result = latest(
            list.items
                .into_iter()
                .filter(|pod| pod.owner.as_deref().is_none_or(|o| o == uid))
                .filter_map(|pod| pod.result),
        );
        let mut memory = self.memory.lock().expect("memory lock");
        // Results are folded into status right away; the cache only spares repeated pod
        // lists while the watch catches up, so it stays small (messages are up to 4 KiB).
        if memory.results.len() > RESULTS_LIMIT {
            memory.results.clear();
        }
        memory.results.insert(uid.to_string(), result.clone());
        Ok(result)
    }

    fn count_error(&self, controller: &'static str, error: &Error) {
        self.metrics
            .errors
            .get_or_create(&ErrorLabels {
                controller,
                error: error.metric_label(),
            })
            .inc();
    }
}

/// A finished Job whose runner result is to be read.
#[derive(Clone, Copy)]
struct FinishedJob<'a> {
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
    /// Its resourceVersion when seen finished: a pod watch at least that new shows the result.
    rv: u64,
}

impl<'a> FinishedJob<'a> {
    fn task(namespace: &'a str, job: &'a IndexedJob) -> Self {
        FinishedJob {
            namespace,
            name: &job.facts.name,
            uid: &job.uid,
            rv: job.rv,
        }
    }

    fn cached(job: &'a CachedJob) -> Self {
        let meta = &job.metadata;
        FinishedJob {
            namespace: meta.namespace.as_deref().unwrap_or_default(),
            name: meta.name.as_deref().unwrap_or_default(),
            uid: meta.uid.as_deref().unwrap_or_default(),
            rv: crate::cached::resource_version(meta),
        }
    }
}

/// Whether both caches have synced (waiting a little): decisions on half-filled caches would
/// report DataSources as missing and miss Jobs.
async fn caches_ready<A, B>(a: &Store<A>, b: &Store<B>) -> bool
where
    A: reflector::Lookup + Clone + 'static,
    A::DynamicType: Eq + std::hash::Hash + Clone,
    B: reflector::Lookup + Clone + 'static,
    B::DynamicType: Eq + std::hash::Hash + Clone,
{
    within_grace(async {
        let _ = a.wait_until_ready().await;
        let _ = b.wait_until_ready().await;
    })
    .await
}

/// Whether the DataSource cache and the task Job index have synced (waiting a little).
async fn pipeline_caches_ready(ctx: &Context) -> bool {
    let mut jobs_ready = ctx.task_jobs_ready.clone();
    within_grace(async {
        let _ = ctx.data_sources.wait_until_ready().await;
        let _ = jobs_ready.wait_for(|ready| *ready).await;
    })
    .await
}

async fn within_grace(ready: impl std::future::Future<Output = ()>) -> bool {
    tokio::time::timeout(Duration::from_secs(2), ready)
        .await
        .is_ok()
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The object of `kind` controlling a cached Job, to reconcile when the Job changes (what
/// `Controller::owns` does from owner references, which the cache does not keep).
fn owner_ref<K>(job: &CachedJob, kind: &str) -> Option<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()>,
{
    let owner = job.owner_of_kind(kind)?;
    Some(ObjectRef::new(&owner.name).within(&job.namespace()?))
}

/// A cached Pipeline without managed fields, and its lists without the spare capacity that
/// decoding leaves (a list grows by doubling: 20 tasks take the room of 32), so that a
/// thousand Pipelines stay small.
fn lean_pipeline(pipeline: &mut Pipeline) {
    strip_meta(pipeline);
    pipeline.spec.tasks.shrink_to_fit();
    for task in &mut pipeline.spec.tasks {
        task.depends_on.shrink_to_fit();
    }
    if let Some(status) = pipeline.status.as_mut() {
        status.conditions.shrink_to_fit();
        status.history.shrink_to_fit();
        if let Some(run) = status.last_run.as_mut() {
            run.tasks.shrink_to_fit();
        }
    }
}

/// Pipelines per list page when the operator (re)lists them.
const PIPELINE_LIST_PAGE: u32 = 100;

fn strip_meta<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
    if let Some(annotations) = object.meta_mut().annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Everything needed to start the controllers.
pub struct Options {
    pub namespace: Option<String>,
    pub settings: PodSettings,
    pub concurrency: u16,
    pub run_start_concurrency: u16,
    pub task_start_events: bool,
    pub instance: String,
    pub openlineage: Option<crate::openlineage_client::Settings>,
}

/// Runs both controllers until `shutdown` resolves; `ready` is called once caches are synced.
pub async fn run(
    client: Client,
    options: Options,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ready: impl FnOnce() + Send + 'static,
) {
    let ns = options.namespace.as_deref();
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));

    // Pipelines and DataSources: one watch each, shared by both controllers.
    let (pipelines, pipeline_writer) = reflector::store_shared::<Pipeline>(1024);
    let pipeline_events = pipeline_writer.subscribe().expect("shared store");
    let pipeline_events_for_ds = pipeline_writer.subscribe().expect("shared store");
    // Listed 100 at a time: a page is held whole (its JSON, then its objects with their managed
    // fields) before `lean_pipeline` slims them, and Pipelines with a run's status are ~10 KB
    // each, so a default page of 500 added megabytes to the peak at start.
    let pipeline_reflector = watcher(
        api::<Pipeline>(&client, ns),
        watcher::Config::default().page_size(PIPELINE_LIST_PAGE),
    )
    .default_backoff()
    .modify(lean_pipeline)
    .reflect_shared(pipeline_writer)
    .for_each(|_| future::ready(()));
    let (data_sources, ds_writer) = reflector::store_shared::<DataSource>(1024);
    let ds_events = ds_writer.subscribe().expect("shared store");
    let ds_events_for_pipelines = ds_writer.subscribe().expect("shared store");
    let ds_reflector = watcher(api::<DataSource>(&client, ns), watcher::Config::default())
        .default_backoff()
        .modify(strip_meta)
        .reflect_shared(ds_writer)
        .for_each(|_| future::ready(()));

    // Task Jobs and check Jobs: separate label-selected watches, stripped before caching.
    // Driven by their own tasks (not by the controllers), so a reconcile waiting for a
    // cache to fill can never hold up the stream that fills it. Task Jobs go into an index
    // of bare facts by Pipeline; each change names the Pipeline to reconcile.
    let task_jobs = Arc::new(Mutex::new(JobIndex::default()));
    let (jobs_ready_tx, task_jobs_ready) = tokio::sync::watch::channel(false);
    let (job_triggers_tx, job_triggers) = futures::channel::mpsc::channel(4096);
    let task_job_watch = watch_task_jobs(
        api::<CachedJob>(&client, ns),
        task_jobs.clone(),
        jobs_ready_tx,
        job_triggers_tx.clone(),
    );
    let (check_jobs, check_job_writer) = reflector::store_shared::<CachedJob>(1024);
    let check_job_events = check_job_writer.subscribe().expect("shared store");
    let check_job_reflector = watcher(
        api::<CachedJob>(&client, ns),
        watcher::Config::default().labels(LABEL_DATASOURCE),
    )
    .default_backoff()
    .reflect_shared(check_job_writer)
    .for_each(|_| future::ready(()));

    // Runner pods: no cache of pods, only the results of terminated runner containers, so
    // that a finished Job's result costs no request.
    let pod_results = Arc::new(Mutex::new(ResultIndex::new(POD_RESULTS_LIMIT)));
    let (progress_tx, pod_progress) = tokio::sync::watch::channel(0u64);
    let pod_watch = watch_pod_results(
        api::<RunnerPod>(&client, ns),
        pod_results.clone(),
        progress_tx,
    );

    let creates = Arc::new(CreatesInFlight::default());
    let context = Arc::new(Context {
        client: client.clone(),
        settings: options.settings.clone(),
        metrics: metrics.clone(),
        events: Publisher::new(client.clone(), options.instance.clone(), creates.clone()),
        task_start_events: options.task_start_events,
        openlineage: options.openlineage.clone().map(|settings| {
            crate::openlineage_client::Sender::new(settings, metrics.openlineage_events.clone())
        }),
        pipelines: pipelines.clone(),
        data_sources: data_sources.clone(),
        task_jobs,
        task_jobs_ready: task_jobs_ready.clone(),
        check_jobs: check_jobs.clone(),
        pod_results,
        pod_progress,
        status_writer: status_writer::StatusWriter::new(STATUS_WRITE_INTERVAL, creates.clone()),
        start_gate: start_gate::StartGate::new(
            usize::from(options.run_start_concurrency),
            start_gate::BUSY_CREATES,
            creates,
            job_triggers_tx.clone(),
        ),
        memory: Mutex::new(Memory::default()),
    });

    let config = controller::Config::default()
        .concurrency(options.concurrency)
        .debounce(Duration::from_millis(50));
    let pipelines_for_mapper = pipelines.clone();
    let pipeline_controller = Controller::for_shared_stream(pipeline_events, pipelines.clone())
        .with_config(config.clone())
        .reconcile_on(job_triggers)
        .watches_shared_stream(ds_events_for_pipelines, move |ds: Arc<DataSource>| {
            // A DataSource change re-validates the Pipelines of its namespace that name it.
            let namespace = ds.namespace().unwrap_or_default();
            let name = ds.name_any();
            pipelines_for_mapper
                .state()
                .into_iter()
                .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
                .filter(|p| crate::pipeline::referenced_data_sources(&p.spec).contains(&name))
                .map(|p| ObjectRef::from_obj(&*p))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown.clone())
        .run(pipeline::reconcile, pipeline::error_policy, context.clone())
        .for_each(|result| {
            if let Err(err) = result {
                tracing::debug!(error = %err, "pipeline controller");
            }
            future::ready(())
        });

    let ds_controller = Controller::for_shared_stream(ds_events, data_sources.clone())
        .with_config(config)
        .watches_shared_stream(check_job_events, |job: Arc<CachedJob>| {
            owner_ref(&job, "DataSource")
        })
        .watches_shared_stream(pipeline_events_for_ds, |p: Arc<Pipeline>| {
            // Lineage: a Pipeline's finished tasks are listed on the DataSources they used.
            let namespace = p.namespace().unwrap_or_default();
            let touched = p
                .status
                .as_ref()
                .and_then(|s| s.last_run.as_ref())
                .is_some_and(|r| r.tasks.iter().any(|t| t.lineage.is_some()));
            let names = if touched {
                crate::pipeline::referenced_data_sources(&p.spec)
            } else {
                Vec::new()
            };
            names
                .into_iter()
                .map(move |name| ObjectRef::<DataSource>::new(&name).within(&namespace))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown.clone())
        .run(
            datasource::reconcile,
            datasource::error_policy,
            context.clone(),
        )
        .for_each(|result| {
            if let Err(err) = result {
                tracing::debug!(error = %err, "datasource controller");
            }
            future::ready(())
        });

    let readiness = {
        let (pipelines, data_sources) = (pipelines.clone(), data_sources.clone());
        let (mut task_jobs_ready, check_jobs) = (task_jobs_ready, check_jobs.clone());
        async move {
            let _ = pipelines.wait_until_ready().await;
            let _ = data_sources.wait_until_ready().await;
            let _ = task_jobs_ready.wait_for(|ready| *ready).await;
            let _ = check_jobs.wait_until_ready().await;
            tracing::info!("caches synced");
            ready();
        }
    };

    let reflectors = async move {
        tokio::select! {
            _ = pipeline_reflector => {},
            _ = ds_reflector => {},
            _ = task_job_watch => {},
            _ = check_job_reflector => {},
            _ = pod_watch => {},
        }
    };
    tokio::select! {
        _ = async { tokio::join!(pipeline_controller, ds_controller, readiness) } => {},
        _ = reflectors => {},
    }
    context.status_writer.flush(SHUTDOWN_FLUSH).await;
}

/// How long a stopping operator waits for its queued status writes.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// The next event of a watch; errors are logged and skipped (the watcher backs off and
/// resumes by itself). `None` once the stream ends.
async fn next_event<K>(
    stream: &mut (impl futures::Stream<Item = watcher::Result<watcher::Event<K>>> + Unpin),
    watch: &str,
) -> Option<watcher::Event<K>> {
    loop {
        match stream.try_next().await {
            Ok(event) => return event,
            Err(err) => tracing::debug!(error = %err, watch, "watch error"),
        }
    }
}

/// Feeds `index` from the watch on task Jobs, marks it ready after the first list, and names
/// the Pipeline of every changed Job to `triggers` (what `Controller::owns` would do).
async fn watch_task_jobs(
    jobs: Api<CachedJob>,
    index: Arc<Mutex<JobIndex>>,
    ready: tokio::sync::watch::Sender<bool>,
    mut triggers: futures::channel::mpsc::Sender<ObjectRef<Pipeline>>,
) {
    let stream = watcher(jobs, watcher::Config::default().labels(LABEL_PIPELINE)).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = next_event(&mut stream, "task Job watch").await {
        let target = {
            let mut index = index.lock().expect("job index lock");
            match event {
                watcher::Event::Init => {
                    index.relist_started();
                    None
                }
                watcher::Event::InitApply(job) => index.apply(&job, true),
                watcher::Event::InitDone => {
                    index.relist_done();
                    ready.send_replace(index.is_ready());
                    None
                }
                watcher::Event::Apply(job) => index.apply(&job, false),
                watcher::Event::Delete(job) => index.delete(&job),
            }
        };
        if let Some(target) = target {
            let pipeline = ObjectRef::new(&target.name).within(&target.namespace);
            // Waits while the controller is behind: the watch then slows down instead of
            // queueing without bound. An error means the controller stopped.
            if futures::SinkExt::send(&mut triggers, pipeline)
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Feeds `index` from a watch on the operator's runner pods (task and check pods carry
/// `app.kubernetes.io/managed-by`) and publishes how far it got.
async fn watch_pod_results(
    pods: Api<RunnerPod>,
    index: Arc<Mutex<ResultIndex>>,
    progress: tokio::sync::watch::Sender<u64>,
) {
    let selector = format!("{LABEL_MANAGED_BY}={}", crate::MANAGED_BY);
    let stream = watcher(pods, watcher::Config::default().labels(&selector)).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = next_event(&mut stream, "pod watch").await {
        let seen = {
            let mut index = index.lock().expect("pod results lock");
            match event {
                watcher::Event::Init => index.relist_started(),
                watcher::Event::InitApply(pod) => index.apply(pod.change(), true),
                watcher::Event::InitDone => index.relist_done(),
                watcher::Event::Apply(pod) => index.apply(pod.change(), false),
                watcher::Event::Delete(pod) => {
                    let change = pod.change();
                    index.delete(change.job_key.as_deref(), &change.pod_uid, change.rv)
                }
            }
            index.seen_rv()
        };
        progress.send_if_modified(|rv| {
            let changed = *rv != seen;
            *rv = seen;
            changed
        });
    }
}

/// Server-side applies `status` to the status subresource of `K` `namespace/name` under the
/// operator's one field manager (forcing: the operator owns status alone), and returns the
/// resource version the server gave the object.
async fn apply_status<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &impl serde::Serialize,
    action: &'static str,
) -> Result<Option<String>>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    #[derive(serde::Serialize)]
    struct StatusApply<'a, S> {
        #[serde(rename = "apiVersion")]
        api_version: std::borrow::Cow<'a, str>,
        kind: std::borrow::Cow<'a, str>,
        status: &'a S,
    }
    // Serialised once, as the request body goes out (a status may be tens of KiB).
    let body = serde_json::value::to_raw_value(&StatusApply {
        api_version: K::api_version(&()),
        kind: K::kind(&()),
        status,
    })
    .map_err(|source| Error::Serialize {
        what: "status",
        source,
    })?;
    let request = kube::core::Request::new(K::url_path(&(), Some(namespace)))
        .patch_subresource(
            "status",
            name,
            &kube::api::PatchParams::apply(crate::FIELD_MANAGER).force(),
            &kube::api::Patch::Apply(&body),
        )
        .map_err(|e| Error::kube(action)(kube::Error::BuildRequest(e)))?;
    let written: crate::cached::Written =
        client.request(request).await.map_err(Error::kube(action))?;
    Ok(written.resource_version())
}
