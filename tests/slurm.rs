//! A real one-node SLURM cluster (Debian's slurm-wlm 22.05 and munge), started by the test in
//! a temporary directory of its own: its own munge key and socket, slurm.conf with free ports,
//! state and spool directories inside it, the node named as `hostname -s`, proctrack/linuxproc
//! (no cgroup delegation on a CI VM). For the prolog/epilog test, also the accounting chain
//! `sacct` reads: a MariaDB server in a fresh data directory and slurmdbd. Every daemon runs
//! in its own process group, ended (TERM, then KILL) when the test's cluster is dropped, even
//! when the test fails; the ports and directories are the test's own, so tests run side by
//! side. Needs root and the packages `.ci/run` installs; skipped (one line) without them.
//!
//! What must hold (nothing is decided by the clock; every wait is a bounded poll):
//! - `srun carbontop run -- CMD` records the job's id, step, node and name: run.json's `slurm`,
//!   emissions.csv's experiment_id (`JOB.STEP`, as sacct names the step) and project_name;
//! - with `dist/slurm/prolog`, `epilog` and `epilog-slurmctld` configured, a job the user did
//!   not wrap is measured: the job's directory holds samples.csv, run.json with its ids,
//!   emissions.csv and summary.json; the job's own processes were found (its CPU share is
//!   not zero); and `sacct -o AdminComment` shows the job's kWh and gCO2e, the same figures
//!   `carbontop report --by-job` gives for the job's directory.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SBIN: [&str; 3] = [
    "/usr/sbin/slurmctld",
    "/usr/sbin/slurmd",
    "/usr/sbin/munged",
];
const DB: [&str; 3] = [
    "/usr/sbin/slurmdbd",
    "/usr/sbin/mariadbd",
    "/usr/bin/mariadb-install-db",
];

fn have(paths: &[&str]) -> bool {
    paths.iter().all(|p| Path::new(p).exists())
}

fn short_hostname() -> String {
    let o = Command::new("hostname").arg("-s").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// Polls `done` every 100 ms for up to `secs` seconds; panics naming `what` and `log`'s tail.
fn poll(secs: u64, what: &str, log: &Path, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    let tail: String = tail.lines().rev().take(30).collect::<Vec<_>>().join("\n");
    panic!(
        "{what}: not within {secs} s; {} (last lines, newest first):\n{tail}",
        log.display()
    );
}

/// What the cluster runs besides slurmctld and slurmd.
#[derive(Clone, Copy)]
struct Options {
    /// MariaDB and slurmdbd, and slurm.conf's accounting through them.
    accounting: bool,
    /// The repository's prolog, epilog and epilog-slurmctld, with their config file.
    scripts: bool,
}

/// A running one-node cluster; its daemons end when it is dropped.
struct Cluster {
    dir: tempfile::TempDir,
    daemons: Vec<(String, Child)>,
    jobs: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        // A recorder the prolog started and no epilog stopped (a failing test) runs in its
        // own session: found by its job directory, which is this cluster's alone.
        let jobs = self.jobs.display().to_string();
        for pid in recorders_under(&jobs) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // slurmd and slurmctld first, the database last.
        for (_, c) in self.daemons.iter_mut().rev() {
            let g = Pid::from_raw(c.id() as i32);
            let _ = killpg(g, Signal::SIGTERM);
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = killpg(g, Signal::SIGKILL);
            let _ = c.wait();
        }
    }
}

/// Processes whose command line names `dir` (the prolog's recorders of this cluster's jobs).
fn recorders_under(dir: &str) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (cmd.contains("record --slurm-job") && cmd.contains(dir)).then_some(pid)
        })
        .collect()
}

impl Cluster {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A Slurm client command for this cluster.
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        for (k, _) in std::env::vars() {
            if k.starts_with("SLURM") {
                c.env_remove(k);
            }
        }
        c.env("SLURM_CONF", self.path("slurm.conf"));
        c
    }

    fn spawn(&mut self, name: &str, c: &mut Command) {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(self.path(&format!("log/{name}.out"))).unwrap();
        let child = c
            .env("SLURM_CONF", self.path("slurm.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push((name.to_owned(), child));
    }

    fn start(o: Options) -> Cluster {
        let t0 = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("carbontop-slurm-")
            .tempdir()
            .unwrap();
        let jobs = dir.path().join("jobs");
        let mut c = Cluster {
            jobs,
            dir,
            daemons: Vec::new(),
        };
        for d in ["log", "state", "spool", "munge", "jobs", "scripts"] {
            std::fs::create_dir_all(c.path(d)).unwrap();
        }
        c.start_munge();
        let dbd_port = o.accounting.then(|| c.start_accounting());
        c.write_slurm_conf(o, dbd_port);
        if o.scripts {
            c.install_scripts();
        }
        c.spawn(
            "slurmctld",
            Command::new("/usr/sbin/slurmctld")
                .args(["-D", "-f"])
                .arg(c.path("slurm.conf")),
        );
        c.spawn(
            "slurmd",
            Command::new("/usr/sbin/slurmd")
                .args(["-D", "-f"])
                .arg(c.path("slurm.conf")),
        );
        let log = c.path("log/slurmctld.log");
        poll(60, "the node idle in sinfo", &log, || {
            c.cmd("sinfo")
                .args(["-h", "-o", "%T"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("idle"))
        });
        eprintln!(
            "slurm: one-node cluster up in {:.1} s (accounting: {})",
            t0.elapsed().as_secs_f64(),
            o.accounting
        );
        c
    }

    fn start_munge(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let key = self.path("munge/key");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::fs::File::open("/dev/urandom").unwrap(), 1024),
            &mut bytes,
        )
        .unwrap();
        std::fs::write(&key, bytes).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let m = |f: &str| format!("--{f}={}", self.path(&format!("munge/{f}")).display());
        let args = [
            "-F".to_owned(),
            "--force".to_owned(),
            format!("--socket={}", self.path("munge/sock").display()),
            format!("--key-file={}", key.display()),
            m("log-file"),
            m("pid-file"),
            m("seed-file"),
        ];
        self.spawn("munged", Command::new("/usr/sbin/munged").args(args));
        let sock = self.path("munge/sock");
        poll(30, "munged's socket", &self.path("log/munged.out"), || {
            sock.exists()
        });
    }

    /// MariaDB in a fresh data directory, then slurmdbd; slurmdbd's port.
    fn start_accounting(&mut self) -> u16 {
        let data = self.path("db/data");
        std::fs::create_dir_all(self.path("db")).unwrap();
        let out = Command::new("/usr/bin/mariadb-install-db")
            .args(["--no-defaults", "--user=root", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .output()
            .unwrap();
        assert!(out.status.success(), "mariadb-install-db: {}", stderr(&out));
        std::fs::write(
            self.path("db/init.sql"),
            "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm-test';\n\
             GRANT ALL ON *.* TO 'slurm'@'127.0.0.1';\n",
        )
        .unwrap();
        let db_port = free_port();
        let sock = self.path("db/sock");
        let p = |k: &str, v: &Path| format!("--{k}={}", v.display());
        let args = [
            "--no-defaults".to_owned(),
            p("datadir", &data),
            "--user=root".to_owned(),
            format!("--port={db_port}"),
            "--bind-address=127.0.0.1".to_owned(),
            p("socket", &sock),
            p("pid-file", &self.path("db/pid")),
            p("init-file", &self.path("db/init.sql")),
            "--skip-name-resolve".to_owned(),
            "--innodb-buffer-pool-size=16M".to_owned(),
            p("log-error", &self.path("log/mariadb.log")),
        ];
        self.spawn("mariadbd", Command::new("/usr/sbin/mariadbd").args(args));
        poll(
            60,
            "mariadbd's socket",
            &self.path("log/mariadb.log"),
            || sock.exists(),
        );
        let dbd_port = free_port();
        let conf = format!(
            "AuthType=auth/munge\nAuthInfo=socket={munge}\nDbdHost=localhost\n\
             DbdAddr=127.0.0.1\nDbdPort={dbd_port}\nSlurmUser=root\nLogFile={log}\n\
             PidFile={pid}\nStorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\n\
             StoragePort={db_port}\nStorageUser=slurm\nStoragePass=slurm-test\n\
             StorageLoc=slurm_acct_db\n",
            munge = self.path("munge/sock").display(),
            log = self.path("log/slurmdbd.log").display(),
            pid = self.path("slurmdbd.pid").display(),
        );
        let path = self.path("slurmdbd.conf");
        std::fs::write(&path, conf).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        // slurmdbd finds slurmdbd.conf beside $SLURM_CONF.
        self.spawn("slurmdbd", Command::new("/usr/sbin/slurmdbd").arg("-D"));
        poll(
            60,
            "slurmdbd listening",
            &self.path("log/slurmdbd.log"),
            || std::net::TcpStream::connect(("127.0.0.1", dbd_port)).is_ok(),
        );
        dbd_port
    }

    fn write_slurm_conf(&self, o: Options, dbd_port: Option<u16>) {
        let host = short_hostname();
        let d = |p: &str| self.path(p).display().to_string();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut conf = format!(
            "ClusterName=ct{ctld}\nSlurmctldHost={host}(127.0.0.1)\nSlurmctldPort={ctld}\n\
             SlurmdPort={slurmd}\nAuthType=auth/munge\nAuthInfo=socket={munge}\n\
             CredType=cred/munge\nSlurmUser=root\nSlurmdUser=root\nStateSaveLocation={state}\n\
             SlurmdSpoolDir={spool}\nSlurmctldPidFile={ctldpid}\nSlurmdPidFile={slurmdpid}\n\
             SlurmctldLogFile={ctldlog}\nSlurmdLogFile={slurmdlog}\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSwitchType=switch/none\n\
             MpiDefault=none\nSchedulerType=sched/builtin\nSelectType=select/cons_tres\n\
             SelectTypeParameters=CR_CPU\nReturnToService=2\nJobCompType=jobcomp/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN\n\
             PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            ctld = free_port(),
            slurmd = free_port(),
            munge = d("munge/sock"),
            state = d("state"),
            spool = d("spool"),
            ctldpid = d("slurmctld.pid"),
            slurmdpid = d("slurmd.pid"),
            ctldlog = d("log/slurmctld.log"),
            slurmdlog = d("log/slurmd.log"),
        );
        conf += &match dbd_port {
            Some(p) => format!(
                "AccountingStorageType=accounting_storage/slurmdbd\n\
                 AccountingStorageHost=127.0.0.1\nAccountingStoragePort={p}\n\
                 AccountingStoragePass={}\n",
                d("munge/sock")
            ),
            None => "AccountingStorageType=accounting_storage/none\n".into(),
        };
        if o.scripts {
            conf += &format!(
                "Prolog={}\nEpilog={}\nEpilogSlurmctld={}\n",
                d("scripts/prolog"),
                d("scripts/epilog"),
                d("scripts/epilog-slurmctld")
            );
        }
        std::fs::write(self.path("slurm.conf"), conf).unwrap();
    }

    /// The repository's scripts, with a config file beside them naming this build and this
    /// cluster's directories (Slurm gives its scripts no environment of the test's).
    fn install_scripts(&self) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/slurm");
        for s in ["prolog", "epilog", "epilog-slurmctld"] {
            std::fs::copy(repo.join(s), self.path(&format!("scripts/{s}"))).unwrap();
        }
        std::fs::write(
            self.path("scripts/carbontop-slurm.conf"),
            format!(
                "CARBONTOP={bin}\nCARBONTOP_JOBS={jobs}\n\
                 CARBONTOP_RECORD_OPTS=\"--interval 200ms --intensity 400\"\n\
                 CARBONTOP_STOP_WAIT=60\nCARBONTOP_SUMMARY_WAIT=120\n\
                 SACCTMGR=/usr/bin/sacctmgr\nSLURM_CONF={conf}\n",
                bin = env!("CARGO_BIN_EXE_carbontop"),
                jobs = self.jobs.display(),
                conf = self.path("slurm.conf").display(),
            ),
        )
        .unwrap();
    }

    /// `srun -J NAME ARGS…` to its end; its output.
    fn srun(&self, name: &str, args: &[&str]) -> std::process::Output {
        let o = self
            .cmd("srun")
            .args(["-N1", "-n1", "-J", name])
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "srun {args:?}: {}", stderr(&o));
        o
    }
}

/// The job id a command printed as `JOB=ID`.
fn job_id(o: &std::process::Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    out.lines()
        .find_map(|l| l.strip_prefix("JOB="))
        .unwrap_or_else(|| panic!("no JOB= line in {out:?}"))
        .trim()
        .to_owned()
}

fn ready(what: &str) -> bool {
    need(&format!("root and {what}"), is_root() && have(&SBIN))
}

#[test]
fn srun_carbontop_run_records_the_jobs_ids() {
    if !ready("slurm-wlm and munge") {
        return;
    }
    let c = Cluster::start(Options {
        accounting: false,
        scripts: false,
    });
    let out = c.path("run");
    let o = c.srun(
        "carbon-a",
        &[
            env!("CARGO_BIN_EXE_carbontop"),
            "run",
            "--headless",
            "--quiet",
            "--interval",
            "200ms",
            "--intensity",
            "400",
            "--out",
            out.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "echo JOB=$SLURM_JOB_ID; sleep 1",
        ],
    );
    let job = job_id(&o);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let s = &run["slurm"];
    assert_eq!(s["job_id"], job.as_str(), "{run}");
    assert_eq!(s["step_id"], "0", "{run}");
    assert_eq!(s["node"], short_hostname().as_str(), "{run}");
    assert_eq!(s["job_name"], "carbon-a", "{run}");
    assert_eq!(s["user"], "root", "{run}");
    let (h, rows) = read_csv(&out.join("emissions.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][col(&h, "experiment_id")], format!("{job}.0"));
    assert_eq!(rows[0][col(&h, "project_name")], "carbon-a");
}

#[test]
fn the_prolog_and_epilogs_measure_an_unwrapped_job_into_its_admin_comment() {
    if !ready("slurm-wlm, munge, slurmdbd and mariadb-server")
        || !need("slurmdbd and mariadb-server", have(&DB))
    {
        return;
    }
    let c = Cluster::start(Options {
        accounting: true,
        scripts: true,
    });
    // A fixed amount of work, not a time: the job's CPU share is whatever it took.
    let o = c.srun(
        "carbon-b",
        &[
            "sh",
            "-c",
            "echo JOB=$SLURM_JOB_ID; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done",
        ],
    );
    let job = job_id(&o);
    let node = short_hostname();
    let dir = c.jobs.join(&job).join(&node);
    let sacct = || {
        let o = c
            .cmd("sacct")
            .args(["-n", "-P", "-X", "-j", &job, "-o", "AdminComment"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    let log = c.jobs.join(&job).join("admin-comment.log");
    poll(180, "the job's AdminComment in sacct", &log, || {
        sacct().starts_with("carbontop ")
    });
    for f in ["samples.csv", "run.json", "emissions.csv", "summary.json"] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    assert!(
        !dir.join("recorder.pid").exists(),
        "the epilog left the recorder's pid"
    );
    assert!(recorders_under(&c.jobs.display().to_string()).is_empty());
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["mode"], "record", "{run}");
    assert_eq!(run["tracking_mode"], "process", "{run}");
    assert_eq!(run["slurm"]["job_id"], job.as_str(), "{run}");
    assert_eq!(run["slurm"]["node"], node.as_str(), "{run}");
    assert_eq!(run["slurm"]["user"], "root", "{run}");
    let (h, rows) = read_csv(&dir.join("emissions.csv"));
    assert_eq!(rows[0][col(&h, "experiment_id")], job);
    assert_eq!(rows[0][col(&h, "tracking_mode")], "process");
    // The job's own processes were found: its CPU share is not nothing.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let own_cpu = summary["runs"][0]["command"]["it_energy_kwh"]["cpu"]
        .as_f64()
        .unwrap_or_else(|| panic!("no command figures: {summary}"));
    assert!(own_cpu > 0.0, "{summary}");

    // The comment's figures are `report --by-job`'s for the job's directory.
    let comment = sacct();
    let em = c.path("by-job.csv");
    let by = json_of(
        bin()
            .args(["report", "--by-job", "--json", "--emissions"])
            .arg(&em)
            .arg(c.jobs.join(&job)),
    );
    let (h, rows) = read_csv(&em);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][col(&h, "experiment_id")], job);
    let j = &by["jobs"][0];
    assert_eq!(j["job"], job.as_str(), "{by}");
    let value = |k: &str| {
        comment
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k} in {comment:?}"))
            .parse::<f64>()
            .unwrap()
    };
    assert!(
        close(value("energy_kwh"), j["energy_kwh"].as_f64().unwrap(), 0.01),
        "{comment} {by}"
    );
    assert!(
        close(value("co2e_g"), j["co2e_g"].as_f64().unwrap(), 0.01),
        "{comment} {by}"
    );
    assert!(value("energy_kwh") > 0.0, "{comment}");
    assert_eq!(
        std::fs::read_to_string(c.jobs.join(&job).join("admin-comment.txt"))
            .unwrap()
            .trim(),
        comment
    );
}

#[test]
fn a_recorder_killed_mid_job_still_leaves_the_jobs_files() {
    if !ready("slurm-wlm and munge") {
        return;
    }
    let c = Cluster::start(Options {
        accounting: false,
        scripts: true,
    });
    // The job kills its own recorder (as Slurm would, had it put the recorder in the job's
    // cgroup): the epilog still writes emissions.csv and summary.json from what was recorded.
    let jobs = c.jobs.display().to_string();
    let script = format!(
        "echo JOB=$SLURM_JOB_ID; kill -9 $(cat {jobs}/$SLURM_JOB_ID/$SLURMD_NODENAME/recorder.pid); \
         i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done"
    );
    let o = c.srun("carbon-c", &["sh", "-c", &script]);
    let job = job_id(&o);
    let dir = c.jobs.join(&job).join(short_hostname());
    // No accounting here: the line is kept in the job's directory all the same.
    let line = c.jobs.join(&job).join("admin-comment.txt");
    poll(120, "admin-comment.txt", &dir.join("recorder.log"), || {
        line.is_file()
    });
    assert!(
        std::fs::read_to_string(&line)
            .unwrap()
            .starts_with("carbontop energy_kwh="),
    );
    let (h, rows) = read_csv(&dir.join("emissions.csv"));
    assert_eq!(rows[0][col(&h, "experiment_id")], job);
    assert_eq!(rows[0][col(&h, "tracking_mode")], "process");
    assert!(dir.join("summary.json").is_file());
    assert!(recorders_under(&jobs).is_empty());
}
