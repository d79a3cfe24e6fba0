//! Leader election through a `coordination.k8s.io/v1` Lease, with client-go's semantics:
//! the holder renews every `duration / 3`; a holder that could not renew for
//! `2 × duration / 3` stops acting (before anyone may take over at `duration`), so two
//! replicas never act at once. Optimistic concurrency (resourceVersion) arbitrates races.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};

/// What the Lease says, as far as the decision needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseState {
    pub holder: Option<String>,
    pub renewed_at: Option<Timestamp>,
    pub duration_seconds: i32,
}

/// What to do about a Lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseAction {
    /// No Lease yet: create it holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Free or expired: take it over.
    TakeOver,
    /// Someone else holds a valid Lease.
    Wait,
}

/// Decides, from the Lease and the clock, what a candidate does.
pub fn lease_action(lease: Option<&LeaseState>, me: &str, now: Timestamp) -> LeaseAction {
    let Some(lease) = lease else {
        return LeaseAction::Create;
    };
    match lease.holder.as_deref() {
        Some(holder) if holder == me => LeaseAction::Renew,
        None | Some("") => LeaseAction::TakeOver,
        Some(_) => {
            let expired = lease.renewed_at.is_none_or(|renewed| {
                renewed + SignedDuration::from_secs(i64::from(lease.duration_seconds.max(1))) < now
            });
            if expired {
                LeaseAction::TakeOver
            } else {
                LeaseAction::Wait
            }
        }
    }
}

/// A candidate for the Lease.
#[derive(Clone)]
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl Elector {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: String,
        duration: Duration,
    ) -> Elector {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity,
            duration,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// One attempt to acquire or renew; `Ok(true)` while we hold the Lease.
    pub async fn try_hold(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let current = self.api.get_opt(&self.name).await?;
        let state = current.as_ref().map(|lease| {
            let spec = lease.spec.clone().unwrap_or_default();
            LeaseState {
                holder: spec.holder_identity,
                renewed_at: spec.renew_time.map(|t| t.0),
                duration_seconds: spec.lease_duration_seconds.unwrap_or(15),
            }
        });
        let duration_seconds = self.duration.as_secs().max(1) as i32;
        let result = match (lease_action(state.as_ref(), &self.identity, now), current) {
            (LeaseAction::Wait, _) => return Ok(false),
            (LeaseAction::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(duration_seconds),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                self.api
                    .create(&PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            (action, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_default();
                if action == LeaseAction::TakeOver {
                    spec.holder_identity = Some(self.identity.clone());
                    spec.acquire_time = Some(MicroTime(now));
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                }
                spec.lease_duration_seconds = Some(duration_seconds);
                spec.renew_time = Some(MicroTime(now));
                // `replace` carries the resourceVersion we read: a concurrent writer makes it fail.
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            (_, None) => return Ok(false),
        };
        match result {
            Ok(()) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self) {
        let retry = (self.duration / 5).max(Duration::from_millis(500));
        loop {
            match self.try_hold().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "could not read or take the Lease"),
            }
            tokio::time::sleep(retry).await;
        }
    }

    /// Renews until a renewal has failed for longer than the renew deadline; then returns
    /// (the caller must stop acting at once).
    pub async fn keep(&self) {
        let period = self.duration / 3;
        let deadline = self.duration * 2 / 3;
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(period).await;
            match self.try_hold().await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!("the Lease was taken by another replica");
                    return;
                }
                Err(err) => tracing::warn!(error = %err, "could not renew the Lease"),
            }
            if last_renewed.elapsed() > deadline {
                tracing::error!("could not renew the Lease within its deadline");
                return;
            }
        }
    }

    /// Gives the Lease up on a graceful shutdown so a standby takes over at once.
    pub async fn release(&self) {
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await {
            let spec = lease.spec.get_or_insert_default();
            if spec.holder_identity.as_deref() == Some(self.identity.as_str()) {
                spec.holder_identity = None;
                spec.lease_duration_seconds = Some(1);
                let _ = self
                    .api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: i64) -> LeaseState {
        LeaseState {
            holder: Some(holder.into()),
            renewed_at: Some(Timestamp::from_second(renewed).unwrap()),
            duration_seconds: 15,
        }
    }

    #[test]
    fn a_valid_lease_of_another_replica_is_respected_until_it_expires() {
        let now = |s| Timestamp::from_second(s).unwrap();
        assert_eq!(
            lease_action(Some(&lease("b", 100)), "a", now(110)),
            LeaseAction::Wait
        );
        assert_eq!(
            lease_action(Some(&lease("b", 100)), "a", now(116)),
            LeaseAction::TakeOver
        );
        assert_eq!(
            lease_action(Some(&lease("a", 100)), "a", now(110)),
            LeaseAction::Renew
        );
        assert_eq!(lease_action(None, "a", now(0)), LeaseAction::Create);
        let released = LeaseState {
            holder: None,
            renewed_at: None,
            duration_seconds: 1,
        };
        assert_eq!(
            lease_action(Some(&released), "a", now(0)),
            LeaseAction::TakeOver
        );
    }
}
