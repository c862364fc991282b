//! A pool of workers over one list of jobs, for `reproduce --devices/--jobs`: each worker takes the
//! next job nobody has taken (a long run does not hold the others back), and the results come back in
//! the jobs' order, so what is computed does not depend on how many workers there were or which one
//! ran what. After a job fails, no worker starts another; the first failure is returned once the
//! running jobs have ended.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `f(worker, job)` for every job on `workers` threads; the results in job order.
pub fn run<W: Sync, J: Sync, R: Send>(
    workers: &[W],
    jobs: &[J],
    f: impl Fn(&W, &J) -> anyhow::Result<R> + Sync,
) -> anyhow::Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    let first_error: Mutex<Option<(usize, anyhow::Error)>> = Mutex::new(None);
    // The caller's training hooks (the Python package's Ctrl-C) watch every worker's runs too.
    let hooks = crate::train::current_hooks();
    std::thread::scope(|scope| {
        for w in workers {
            scope.spawn(|| {
                crate::train::with_hooks(hooks.clone(), || {
                    while !failed.load(Ordering::SeqCst) {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(job) = jobs.get(i) else { break };
                        match f(w, job) {
                            Ok(r) => {
                                results.lock().expect("no worker panics holding it")[i] = Some(r)
                            }
                            Err(e) => {
                                failed.store(true, Ordering::SeqCst);
                                let mut first =
                                    first_error.lock().expect("no worker panics holding it");
                                // The earliest job's error, whatever the timing.
                                if first.as_ref().is_none_or(|(j, _)| i < *j) {
                                    *first = Some((i, e));
                                }
                            }
                        }
                    }
                })
            });
        }
    });
    if let Some((_, e)) = first_error.into_inner().expect("the workers have ended") {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .expect("the workers have ended")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_job_order_whatever_the_workers() {
        let jobs: Vec<u64> = (0..50).collect();
        for n in [1, 2, 7] {
            let workers: Vec<usize> = (0..n).collect();
            let seen = Mutex::new(vec![0usize; n]);
            let out = run(&workers, &jobs, |w, j| {
                seen.lock().unwrap()[*w] += 1;
                // Uneven job lengths, so the workers interleave.
                std::thread::sleep(std::time::Duration::from_micros(50 * (j % 5)));
                Ok(j * j)
            })
            .unwrap();
            assert_eq!(out, jobs.iter().map(|j| j * j).collect::<Vec<_>>());
            assert_eq!(seen.into_inner().unwrap().iter().sum::<usize>(), 50);
        }
    }

    #[test]
    fn a_failure_stops_new_jobs_and_is_returned() {
        let jobs: Vec<u32> = (0..100).collect();
        let started = AtomicUsize::new(0);
        let err = run(&[(), ()], &jobs, |_, j| {
            started.fetch_add(1, Ordering::SeqCst);
            if *j == 3 {
                anyhow::bail!("job 3 failed");
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "job 3 failed");
        assert!(started.load(Ordering::SeqCst) < 10);
    }
}
