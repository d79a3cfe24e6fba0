//! Rendering of task and connection-check Jobs: the runner contract, Secret wiring through
//! `secretKeyRef` only, a locked-down pod, and labels that let a restarted operator find them.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, PodSecurityContext,
    PodSpec, PodTemplateSpec, SeccompProfile, SecretKeySelector, SecurityContext, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use tributary_core::api::{RunnerPodOverrides, Task};
use tributary_core::contract::{INPUT_ENV, RunnerInput, TERMINATION_MESSAGE_PATH, secret_bindings};
use tributary_core::naming::{
    LABEL_ATTEMPT, LABEL_DATASOURCE, LABEL_MANAGED_BY, LABEL_PIPELINE, LABEL_RUN, LABEL_TASK,
    label_value,
};

use crate::MANAGED_BY;

/// Name of the container in every Job the operator creates; the result is read from it.
pub const CONTAINER: &str = "runner";
/// The unprivileged user every pod runs as (the distroless `nonroot` user).
pub const RUN_AS_USER: i64 = 65532;

/// Operator-wide pod settings (from flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSettings {
    pub runner_image: String,
    pub image_pull_policy: String,
    pub host_network: bool,
    pub job_ttl_seconds: i32,
    pub check_job_ttl_seconds: i32,
    /// Node selector of runner pods unless a Pipeline sets its own.
    pub node_selector: BTreeMap<String, String>,
}

impl Default for PodSettings {
    fn default() -> Self {
        PodSettings {
            runner_image: "ghcr.io/tributary-dev/runner:0.1.0".into(),
            image_pull_policy: "IfNotPresent".into(),
            host_network: false,
            job_ttl_seconds: 86_400,
            check_job_ttl_seconds: 3_600,
            node_selector: BTreeMap::new(),
        }
    }
}

/// The object that owns a Job (a Pipeline or a DataSource).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner<'a> {
    pub kind: &'static str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
}

impl Owner<'_> {
    fn reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: format!(
                "{}/{}",
                tributary_core::api::GROUP,
                tributary_core::api::VERSION
            ),
            kind: self.kind.to_string(),
            name: self.name.to_string(),
            uid: self.uid.to_string(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}

/// One task attempt to render.
#[derive(Clone, Debug)]
pub struct TaskJob<'a> {
    pub job_name: String,
    pub run_id: &'a str,
    pub attempt: u32,
    pub task: &'a Task,
    pub timeout_seconds: u32,
    pub input: &'a RunnerInput,
    pub overrides: Option<&'a RunnerPodOverrides>,
    /// Rendered arguments of a `container` task (templates expanded).
    pub container_args: Vec<String>,
}

/// The Job of one attempt of one task.
pub fn task_job(owner: &Owner<'_>, job: &TaskJob<'_>, settings: &PodSettings) -> Job {
    let mut labels = BTreeMap::from([
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
        (LABEL_PIPELINE.to_string(), label_value(owner.name)),
        (LABEL_RUN.to_string(), job.run_id.to_string()),
        (LABEL_TASK.to_string(), job.task.name.clone()),
        (LABEL_ATTEMPT.to_string(), job.attempt.to_string()),
    ]);
    labels.retain(|_, v| !v.is_empty());
    let overrides = job.overrides.cloned().unwrap_or_default();
    let mut env = Vec::new();
    let mut container = match &job.task.container {
        Some(user) => {
            // The user's image: same lockdown, declared env first so the contract's
            // variables (which the runner library reads) cannot be shadowed by accident.
            env.extend(user.env.iter().cloned());
            Container {
                name: CONTAINER.into(),
                image: Some(user.image.clone()),
                command: (!user.command.is_empty()).then(|| user.command.clone()),
                args: (!job.container_args.is_empty()).then(|| job.container_args.clone()),
                resources: user.resources.clone().or(overrides.resources.clone()),
                image_pull_policy: overrides.image_pull_policy.clone(),
                ..Default::default()
            }
        }
        None => Container {
            name: CONTAINER.into(),
            image: Some(
                overrides
                    .image
                    .clone()
                    .unwrap_or_else(|| settings.runner_image.clone()),
            ),
            image_pull_policy: Some(
                overrides
                    .image_pull_policy
                    .clone()
                    .unwrap_or_else(|| settings.image_pull_policy.clone()),
            ),
            resources: overrides.resources.clone(),
            ..Default::default()
        },
    };
    env.extend(contract_env(job.input));
    container.env = Some(env);
    let pod = pod_spec(container, Some(&overrides), settings);
    build(
        owner,
        &job.job_name,
        labels,
        pod,
        Some(i64::from(job.timeout_seconds)),
        settings.job_ttl_seconds,
    )
}

/// The connection-check Job of a DataSource.
pub fn check_job(
    owner: &Owner<'_>,
    job_name: &str,
    input: &RunnerInput,
    timeout_seconds: i64,
    settings: &PodSettings,
) -> Job {
    let labels = BTreeMap::from([
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
        (LABEL_DATASOURCE.to_string(), label_value(owner.name)),
    ]);
    let container = Container {
        name: CONTAINER.into(),
        image: Some(settings.runner_image.clone()),
        image_pull_policy: Some(settings.image_pull_policy.clone()),
        env: Some(contract_env(input)),
        ..Default::default()
    };
    let pod = pod_spec(container, None, settings);
    build(
        owner,
        job_name,
        labels,
        pod,
        Some(timeout_seconds),
        settings.check_job_ttl_seconds,
    )
}

/// `TRIBUTARY_INPUT` plus one `secretKeyRef` variable per Secret key the input needs.
/// The operator never reads a Secret: the kubelet resolves these references in the pod.
pub fn contract_env(input: &RunnerInput) -> Vec<EnvVar> {
    let mut env = vec![EnvVar {
        name: INPUT_ENV.into(),
        value: Some(serde_json::to_string(input).expect("runner input always serialises")),
        value_from: None,
    }];
    for binding in secret_bindings(&input.data_sources()) {
        env.push(EnvVar {
            name: binding.env,
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: binding.secret.name,
                    key: binding.secret.key,
                    optional: binding.optional.then_some(true),
                }),
                ..Default::default()
            }),
        });
    }
    env
}

fn pod_spec(
    mut container: Container,
    overrides: Option<&RunnerPodOverrides>,
    settings: &PodSettings,
) -> PodSpec {
    container.termination_message_path = Some(TERMINATION_MESSAGE_PATH.into());
    // The result is a JSON file; logs only stand in when the runner died before writing it.
    container.termination_message_policy = Some("FallbackToLogsOnError".into());
    container.security_context = Some(SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_USER),
        run_as_group: Some(RUN_AS_USER),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    });
    // A read-only root file system still needs somewhere to spool parts and TLS scratch.
    container.volume_mounts = Some(vec![VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..Default::default()
    }]);
    let overrides = overrides.cloned().unwrap_or_default();
    PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".into()),
        automount_service_account_token: Some(false),
        service_account_name: overrides.service_account_name.clone(),
        enable_service_links: Some(false),
        host_network: settings.host_network.then_some(true),
        dns_policy: settings
            .host_network
            .then(|| "ClusterFirstWithHostNet".to_string()),
        node_selector: Some(if overrides.node_selector.is_empty() {
            settings.node_selector.clone()
        } else {
            overrides.node_selector
        })
        .filter(|selector| !selector.is_empty()),
        tolerations: (!overrides.tolerations.is_empty()).then_some(overrides.tolerations),
        priority_class_name: overrides.priority_class_name,
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_USER),
            run_as_group: Some(RUN_AS_USER),
            fs_group: Some(RUN_AS_USER),
            seccomp_profile: Some(runtime_default()),
            ..Default::default()
        }),
        volumes: Some(vec![Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: None,
                medium: None,
            }),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}

fn build(
    owner: &Owner<'_>,
    name: &str,
    labels: BTreeMap<String, String>,
    pod: PodSpec,
    active_deadline_seconds: Option<i64>,
    ttl: i32,
) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(owner.namespace.to_string()),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner.reference()]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            // Retries are the operator's (with backoff and a fresh Job per attempt), never the Job's.
            backoff_limit: Some(0),
            active_deadline_seconds,
            ttl_seconds_after_finished: Some(ttl),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{a_data_source, a_pipeline, a_task_input};

    fn rendered() -> Job {
        rendered_with(None, &PodSettings::default())
    }

    fn rendered_with(overrides: Option<&RunnerPodOverrides>, settings: &PodSettings) -> Job {
        let pipeline = a_pipeline().diamond().build();
        let task = &pipeline.spec.tasks[0];
        let input = a_task_input(
            &pipeline,
            task,
            [("lake", a_data_source().s3("raw").secret("minio").spec())],
        );
        task_job(
            &Owner {
                kind: "Pipeline",
                name: "retail",
                namespace: "ns",
                uid: "u1",
            },
            &TaskJob {
                job_name: "retail-g1-a-1".into(),
                run_id: "g1",
                attempt: 1,
                task,
                timeout_seconds: 600,
                input: &input,
                overrides,
                container_args: vec![],
            },
            settings,
        )
    }

    fn node_selector(job: &Job) -> Option<BTreeMap<String, String>> {
        job.spec.clone()?.template.spec?.node_selector
    }

    #[test]
    fn the_operators_node_selector_applies_unless_the_pipeline_sets_its_own() {
        let settings = PodSettings {
            node_selector: BTreeMap::from([("pool".to_string(), "data".to_string())]),
            ..PodSettings::default()
        };
        assert_eq!(node_selector(&rendered()), None);
        assert_eq!(
            node_selector(&rendered_with(None, &settings)),
            Some(settings.node_selector.clone())
        );
        let own = RunnerPodOverrides {
            node_selector: BTreeMap::from([("zone".to_string(), "eu".to_string())]),
            ..Default::default()
        };
        assert_eq!(
            node_selector(&rendered_with(Some(&own), &settings)),
            Some(own.node_selector.clone())
        );
    }

    #[test]
    fn a_task_job_never_retries_itself_and_stops_at_the_task_timeout() {
        let spec = rendered().spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.active_deadline_seconds, Some(600));
        assert_eq!(spec.ttl_seconds_after_finished, Some(86_400));
    }

    #[test]
    fn a_task_pod_is_locked_down() {
        let pod = rendered().spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let pod_sc = pod.security_context.unwrap();
        assert_eq!(pod_sc.run_as_non_root, Some(true));
        assert_eq!(pod_sc.run_as_user, Some(65532));
        let c = &pod.containers[0];
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
        assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        assert_eq!(
            c.termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError")
        );
        assert_eq!(pod.host_network, None);
    }

    #[test]
    fn credentials_reach_the_pod_only_as_secret_key_references() {
        let job = rendered();
        let c = &job.spec.unwrap().template.spec.unwrap().containers[0];
        let env = c.env.clone().unwrap();
        assert_eq!(env[0].name, INPUT_ENV);
        let secret_vars: Vec<_> = env.iter().skip(1).collect();
        assert!(!secret_vars.is_empty());
        for var in secret_vars {
            assert!(var.value.is_none(), "{} carries a literal value", var.name);
            let selector = var.value_from.clone().unwrap().secret_key_ref.unwrap();
            assert_eq!(selector.name, "minio");
        }
    }

    #[test]
    fn jobs_are_labelled_with_pipeline_run_task_and_attempt_and_owned_by_the_pipeline() {
        let job = rendered();
        let labels = job.metadata.labels.unwrap();
        assert_eq!(labels[LABEL_PIPELINE], "retail");
        assert_eq!(labels[LABEL_RUN], "g1");
        assert_eq!(labels[LABEL_TASK], "a");
        assert_eq!(labels[LABEL_ATTEMPT], "1");
        let owner = &job.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Pipeline", "u1", Some(true))
        );
    }

    #[test]
    fn the_test_bed_host_network_option_reaches_the_pod() {
        let settings = PodSettings {
            host_network: true,
            ..Default::default()
        };
        let pipeline = a_pipeline().diamond().build();
        let input = a_task_input(&pipeline, &pipeline.spec.tasks[0], []);
        let job = check_job(
            &Owner {
                kind: "DataSource",
                name: "lake",
                namespace: "ns",
                uid: "u",
            },
            "lake-check-1-0",
            &input,
            60,
            &settings,
        );
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.host_network, Some(true));
        assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    }
}
