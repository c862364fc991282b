//! `reproduce --emit slurm`: a ready `sbatch` job array, one task per shard of the grid, each task the
//! same `reproduce` command with `--shard $SLURM_ARRAY_TASK_ID/N` over one shared output folder. The
//! scheduler does the scheduling; the run directories' locks keep two tasks out of one run, and the
//! task that finishes the grid's last run (or `reproduce --collect`) writes the reports.

use std::fmt::Write;
use std::path::Path;

/// What the script needs to know.
pub struct JobArray<'a> {
    /// The `cobrar-gpu` binary (absolute).
    pub program: &'a Path,
    /// The reproduce command's arguments as given, without the emit flags (the task adds `--shard`).
    pub args: &'a [String],
    /// The folder the command was given from: the tasks run there, so relative paths mean the same.
    pub workdir: &'a Path,
    /// The output folder (absolute): the tasks' logs go to its `slurm/`.
    pub out: &'a Path,
    pub shards: usize,
    /// GPUs a task requests; 0 requests none.
    pub gpus_per_task: u32,
    /// Each task's time limit, in Slurm's form.
    pub time: &'a str,
    /// Per shard: runs to train and the most optimizer steps they take (every epoch run).
    pub plan: &'a [(usize, u64)],
    pub grid: &'a str,
}

/// `s` quoted for a POSIX shell.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl JobArray<'_> {
    /// The sbatch script.
    pub fn script(&self) -> String {
        let command: Vec<String> = std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .map(|a| quote(&a))
            .collect();
        let command = command.join(" ");
        let mut s = String::from("#!/bin/bash\n");
        let _ = writeln!(
            s,
            "# Written by `cobrar-gpu reproduce --emit slurm` ({} {}): grid {}, {} shard(s).\n\
             # Submit it from any node that sees {}:\n#   sbatch {}\n\
             # and when every task has ended (the last one to finish writes the reports too):\n\
             #   {command} --collect\n\
             # Shard I trains the grid's runs I, I+N, I+2N, … Per shard, runs to train and the most\n\
             # optimizer steps they take (every epoch, no early stop), to size --time from a measured\n\
             # steps/s (`cobrar-gpu bench` on the cluster's GPU):",
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            self.grid,
            self.shards,
            self.out.display(),
            quote(&self.out.join("reproduce.sbatch").display().to_string()),
        );
        for (i, (runs, steps)) in self.plan.iter().enumerate() {
            let _ = writeln!(
                s,
                "#   shard {}: {runs} run(s), at most {steps} steps",
                i + 1
            );
        }
        let _ = writeln!(s, "#SBATCH --job-name=cobrar-reproduce");
        let _ = writeln!(s, "#SBATCH --array=1-{}", self.shards);
        let _ = writeln!(s, "#SBATCH --ntasks=1");
        if self.gpus_per_task > 0 {
            let _ = writeln!(s, "#SBATCH --gres=gpu:{}", self.gpus_per_task);
        }
        let _ = writeln!(s, "#SBATCH --time={}", self.time);
        let _ = writeln!(s, "#SBATCH --chdir={}", self.workdir.display());
        let _ = writeln!(
            s,
            "#SBATCH --output={}",
            self.out.join("slurm").join("%A_%a.log").display()
        );
        let _ = writeln!(s, "set -euo pipefail");
        let _ = writeln!(
            s,
            "exec {command} --shard \"${{SLURM_ARRAY_TASK_ID}}/{}\"",
            self.shards
        );
        s
    }
}

/// A Slurm time limit: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM` or `D-HH:MM:SS`.
pub fn parse_time(s: &str) -> Result<String, String> {
    let bad = || format!("{s:?}: expected a Slurm time limit such as 12:00:00 or 2-00:00:00");
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, s),
    };
    if days.is_some_and(|d| d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad());
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let digits = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !(1..=3).contains(&parts.len()) || !parts.iter().all(digits) {
        return Err(bad());
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_for_the_shell() {
        assert_eq!(quote("ml-1m"), "ml-1m");
        assert_eq!(quote("/data/my runs"), "'/data/my runs'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn the_script_is_one_array_task_per_shard() {
        let args: Vec<String> = ["reproduce", "--dataset", "ml 1m", "--out", "/s/out"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let job = JobArray {
            program: Path::new("/opt/cobrar-gpu"),
            args: &args,
            workdir: Path::new("/home/me"),
            out: Path::new("/s/out"),
            shards: 3,
            gpus_per_task: 1,
            time: "12:00:00",
            plan: &[(2, 100), (2, 90), (1, 10)],
            grid: "fast",
        };
        let s = job.script();
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(s.contains("#SBATCH --array=1-3\n") && s.contains("#SBATCH --gres=gpu:1\n"));
        assert!(
            s.contains("#SBATCH --time=12:00:00\n") && s.contains("#SBATCH --chdir=/home/me\n")
        );
        assert!(s.contains("#SBATCH --output=/s/out/slurm/%A_%a.log\n"));
        assert!(s.ends_with(
            "exec /opt/cobrar-gpu reproduce --dataset 'ml 1m' --out /s/out --shard \"${SLURM_ARRAY_TASK_ID}/3\"\n"
        ));
        assert!(s.contains("#   shard 3: 1 run(s), at most 10 steps"));
        let none = JobArray {
            gpus_per_task: 0,
            ..job
        };
        assert!(!none.script().contains("--gres"));
    }

    #[test]
    fn time_limits_take_slurms_forms() {
        for ok in ["30", "12:00:00", "1-00:00:00", "2-12", "90:00"] {
            assert!(parse_time(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1h", "-1", "1-", "12::00", "1:2:3:4"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
