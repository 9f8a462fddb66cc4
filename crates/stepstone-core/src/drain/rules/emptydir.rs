//! `emptyDir` volumes die with the pod: evicting needs consent (`delete_emptydir_data`,
//! `--delete-emptydir-data`). The owners' `safe-to-evict: "true"` is not consent: `kubectl drain`
//! refuses such a pod without the flag, and the plan, `stepstone drain` and the printed kubectl
//! lines must agree on what drains.

use crate::drain::{BlockerKind, Outcome, PodContext, Rule};
use crate::inventory::VolumeSource;

pub struct EmptyDir;

impl Rule for EmptyDir {
    fn name(&self) -> &'static str {
        "emptydir"
    }

    fn check(&self, ctx: &PodContext<'_>) -> Outcome {
        let names: Vec<&str> = ctx
            .pod
            .volumes
            .iter()
            .filter(|v| matches!(v.source, VolumeSource::EmptyDir { .. }))
            .map(|v| v.name.as_str())
            .collect();
        if names.is_empty() {
            return Outcome::Undecided;
        }
        let blocker = ctx.blocker(
            BlockerKind::Emptydir,
            format!("emptyDir volume {} is deleted with the pod", names.join(", ")),
            "if that data is disposable (cache, scratch), pass --delete-emptydir-data (`kubectl drain` needs the same flag); else move it to a PersistentVolume first".to_string(),
        );
        Outcome::block_unless(ctx.opts.delete_emptydir_data, blocker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drain::DrainOptions;
    use crate::drain::SAFE_TO_EVICT_ANNOTATION;
    use crate::drain::testing::*;
    use crate::inventory::Inventory;

    #[test]
    fn table() {
        let consent = DrainOptions { delete_emptydir_data: true, ..Default::default() };
        let disk = || VolumeSource::EmptyDir { medium: None };
        let memory = VolumeSource::EmptyDir { medium: Some("Memory".into()) };
        let cases = [
            (with_volume(pod("api"), disk()), DrainOptions::default(), "block:emptydir"),
            (with_volume(pod("api"), memory), DrainOptions::default(), "block:emptydir"),
            (with_volume(pod("api"), disk()), consent.clone(), "accept:emptydir"),
            // The owners' word is not consent to lose the data: kubectl drain refuses it too.
            (
                annotated(with_volume(pod("worker"), disk()), SAFE_TO_EVICT_ANNOTATION, "true"),
                DrainOptions::default(),
                "block:emptydir",
            ),
            (
                annotated(with_volume(pod("worker"), disk()), SAFE_TO_EVICT_ANNOTATION, "true"),
                consent.clone(),
                "accept:emptydir",
            ),
            (
                with_volume(pod("api"), disk()),
                DrainOptions { allow_local_storage_loss: true, delete_unmanaged: true, ..Default::default() },
                "block:emptydir",
            ),
            (
                with_volume(pod("cfg"), VolumeSource::Other { kind: "configMap".into() }),
                DrainOptions::default(),
                "undecided",
            ),
            (pod("web"), consent, "undecided"),
        ];
        for (p, opts, want) in cases {
            assert_eq!(outcome(&EmptyDir, &p, &Inventory::default(), &opts), want, "{} {opts:?}", p.name);
        }
    }
}
