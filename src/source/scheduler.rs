//! The scheduler a run is part of, from the environment it gives every job step: SLURM's job,
//! step, array index, node, name, user, account and partition (Slurm's `srun`/`sbatch`
//! "OUTPUT ENVIRONMENT VARIABLES"), so a run's files join with `sacct` by job id. Read once
//! at start, recorded in run.json and emissions.csv's `experiment_id`.

use serde::{Deserialize, Serialize};

/// A SLURM job step, as its environment names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slurm {
    /// `SLURM_JOB_ID`.
    pub job_id: String,
    /// `SLURM_STEP_ID` (absent in a batch script itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
    /// `SLURM_ARRAY_JOB_ID` and `SLURM_ARRAY_TASK_ID` of an array job's task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_task_id: Option<String>,
    /// `SLURMD_NODENAME`: the node the step runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `SLURM_JOB_NAME`, `SLURM_JOB_USER`, `SLURM_JOB_ACCOUNT`, `SLURM_JOB_PARTITION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

/// The longest value taken from the environment: job ids and names are short; a longer value
/// is not a scheduler's and is left out.
const MAX_VALUE: usize = 256;

impl Slurm {
    /// From an environment lookup; None outside a SLURM job.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<Slurm> {
        let get = |k: &str| {
            env(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty() && v.len() <= MAX_VALUE && !v.contains(['\n', '\r']))
                // Slurm's scripts are given `(null)` for what the job has not (an account).
                .filter(|v| v != "(null)")
        };
        Some(Slurm {
            job_id: get("SLURM_JOB_ID").or_else(|| get("SLURM_JOBID"))?,
            step_id: get("SLURM_STEP_ID").or_else(|| get("SLURM_STEPID")),
            array_job_id: get("SLURM_ARRAY_JOB_ID"),
            array_task_id: get("SLURM_ARRAY_TASK_ID"),
            node: get("SLURMD_NODENAME"),
            job_name: get("SLURM_JOB_NAME"),
            user: get("SLURM_JOB_USER"),
            account: get("SLURM_JOB_ACCOUNT"),
            partition: get("SLURM_JOB_PARTITION"),
        })
    }

    /// The job `id` as a job recorder started by a prolog sees it: its ids from the prolog's
    /// environment where that is the same job's (a prolog has no step; `SLURM_JOB_NAME` is
    /// given to the `EpilogSlurmctld` only), else the id alone.
    pub fn of_job(id: &str, env: &dyn Fn(&str) -> Option<String>) -> Slurm {
        match Slurm::from_env(env) {
            Some(s) if s.job_id == id => Slurm { step_id: None, ..s },
            _ => Slurm {
                job_id: id.to_owned(),
                ..Default::default()
            },
        }
    }

    /// The job as `sacct` names it: `JOB` or an array task's `ARRAYJOB_TASK`, then `.STEP` for
    /// a step (`sacct -j 1234_7.0`).
    pub fn sacct_id(&self) -> String {
        let job = match (&self.array_job_id, &self.array_task_id) {
            (Some(a), Some(t)) => format!("{a}_{t}"),
            _ => self.job_id.clone(),
        };
        match &self.step_id {
            Some(s) => format!("{job}.{s}"),
            None => job,
        }
    }
}

/// The process's own environment.
pub fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Option<Slurm> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Slurm::from_env(&|k| m.get(k).cloned())
    }

    #[test]
    fn a_job_step_and_an_array_task_as_sacct_names_them() {
        assert_eq!(from(&[]), None);
        let s = from(&[
            ("SLURM_JOB_ID", "1234"),
            ("SLURM_STEP_ID", "0"),
            ("SLURMD_NODENAME", "gpu07"),
            ("SLURM_JOB_NAME", "resnet"),
        ])
        .unwrap();
        assert_eq!(s.sacct_id(), "1234.0");
        assert_eq!(s.node.as_deref(), Some("gpu07"));
        let a = from(&[
            ("SLURM_JOB_ID", "1240"),
            ("SLURM_ARRAY_JOB_ID", "1234"),
            ("SLURM_ARRAY_TASK_ID", "6"),
        ])
        .unwrap();
        assert_eq!(a.sacct_id(), "1234_6");
        // Not a scheduler's value: left out.
        let long = "x".repeat(300);
        assert_eq!(from(&[("SLURM_JOB_ID", &long)]), None);
        assert_eq!(from(&[("SLURM_JOB_ID", "1\n2")]), None);
    }

    #[test]
    fn a_job_recorder_takes_the_prologs_ids_of_its_own_job_only() {
        let env: HashMap<String, String> = [
            ("SLURM_JOB_ID", "42"),
            ("SLURM_STEP_ID", "0"),
            ("SLURMD_NODENAME", "gpu07"),
            ("SLURM_JOB_USER", "ada"),
            ("SLURM_JOB_ACCOUNT", "(null)"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let get = |k: &str| env.get(k).cloned();
        let j = Slurm::of_job("42", &get);
        assert_eq!(j.sacct_id(), "42");
        assert_eq!((j.user.as_deref(), j.account), (Some("ada"), None));
        assert_eq!(j.node.as_deref(), Some("gpu07"));
        let other = Slurm::of_job("43", &get);
        assert_eq!(
            other,
            Slurm {
                job_id: "43".into(),
                ..Default::default()
            }
        );
    }
}
