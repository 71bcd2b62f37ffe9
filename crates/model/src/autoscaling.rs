//! ECS target tracking on average CPU, evaluated once per CloudWatch datapoint.
//!
//! Scale out after `scale_out_datapoints` consecutive datapoints above the target, to
//! `ceil(running × cpu / target)`, counting tasks still starting as capacity already
//! added (so a second alarm during the start-up adds only the difference). Scale in after
//! `scale_in_datapoints` consecutive datapoints below `scale_in_ratio × target`, not
//! within `scale_in_cooldown` of the last scale-in nor `scale_out_cooldown` of the last
//! scale-out; a scale-out is never held back by the scale-in cooldown. Always within
//! `[min_tasks, max_tasks]`. A datapoint is the true average CPU of the service over its
//! period ([`TargetTracking::evaluate`]); the caller makes started tasks ready after their
//! start time.

use surge_profile::system::{Autoscaling, Orchestrator as OrchestratorModel};

use crate::orchestrator::{Integrals, Orchestrator};
use crate::time::{Nanos, SECOND, nanos};

/// What to do after a datapoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Hold,
    /// Start this many tasks.
    ScaleOut(u32),
    /// Remove this many running tasks.
    ScaleIn(u32),
}

pub struct TargetTracking {
    policy: Autoscaling,
    min: u32,
    max: u32,
    above: u32,
    below: u32,
    last_out: Option<Nanos>,
    last_in: Option<Nanos>,
    /// The service's running totals at the last datapoint.
    last_datapoint: Integrals,
}

impl TargetTracking {
    pub fn new(model: &OrchestratorModel) -> Self {
        Self {
            policy: model.autoscaling.clone(),
            min: model.min_tasks,
            max: model.max_tasks,
            above: 0,
            below: 0,
            last_out: None,
            last_in: None,
            last_datapoint: Integrals::default(),
        }
    }

    /// Whether the policy scales at all.
    pub fn enabled(&self) -> bool {
        self.policy.enabled
    }

    /// Time between datapoints (at least a second).
    pub fn period(&self) -> Nanos {
        nanos(self.policy.period).max(SECOND)
    }

    /// The datapoint of `service` at `now`, its average CPU since the last one, acted on:
    /// a scale-in removes tasks at once; a scale-out asks for tasks and returns how many,
    /// for the caller to make ready after their start time.
    pub fn evaluate<T>(&mut self, now: Nanos, service: &mut Orchestrator<T>) -> u32 {
        let integrals = service.integrals(now);
        let cpu = integrals.cpu_since(&self.last_datapoint);
        self.last_datapoint = integrals;
        match self.datapoint(now, cpu, service.running(), service.starting()) {
            Decision::Hold => 0,
            Decision::ScaleOut(n) => {
                service.start_tasks(n);
                n
            }
            Decision::ScaleIn(n) => {
                service.remove_tasks(now, n);
                0
            }
        }
    }

    fn within(last: Option<Nanos>, cooldown: Nanos, now: Nanos) -> bool {
        last.is_some_and(|t| now < t + cooldown)
    }

    /// One datapoint of average CPU (`cpu` in 0..=1) at `now`.
    pub fn datapoint(&mut self, now: Nanos, cpu: f64, running: u32, starting: u32) -> Decision {
        let p = &self.policy;
        if !p.enabled {
            return Decision::Hold;
        }
        let target = p.target_cpu.fraction();
        if cpu > target {
            self.above += 1;
            self.below = 0;
        } else if cpu < target * p.scale_in_ratio.fraction() {
            self.below += 1;
            self.above = 0;
        } else {
            self.above = 0;
            self.below = 0;
        }
        let wanted = ((f64::from(running) * cpu / target).ceil() as u32).clamp(self.min, self.max);
        if self.above >= p.scale_out_datapoints && wanted > running + starting {
            self.last_out = Some(now);
            return Decision::ScaleOut(wanted - running - starting);
        }
        if self.below >= p.scale_in_datapoints
            && wanted < running
            && starting == 0
            && !Self::within(self.last_in, nanos(p.scale_in_cooldown), now)
            && !Self::within(self.last_out, nanos(p.scale_out_cooldown), now)
        {
            self.last_in = Some(now);
            return Decision::ScaleIn(running - wanted);
        }
        Decision::Hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MINUTE;

    fn model() -> OrchestratorModel {
        OrchestratorModel {
            enabled: true,
            initial_tasks: 10,
            min_tasks: 10,
            max_tasks: 200,
            workers_per_task: 1,
            vcpu_per_task: 1.0,
            memory_gb_per_task: 2.0,
            cpu_per_message: "25ms".parse().unwrap(),
            task_start: "90s".parse().unwrap(),
            autoscaling: Autoscaling {
                enabled: true,
                target_cpu: "60%".parse().unwrap(),
                period: "1m".parse().unwrap(),
                scale_out_datapoints: 3,
                scale_in_datapoints: 15,
                scale_in_ratio: "90%".parse().unwrap(),
                scale_out_cooldown: "60s".parse().unwrap(),
                scale_in_cooldown: "300s".parse().unwrap(),
            },
        }
    }

    #[test]
    fn three_datapoints_then_out_counting_starting_tasks() {
        let mut tt = TargetTracking::new(&model());
        assert_eq!(tt.datapoint(MINUTE, 1.0, 10, 0), Decision::Hold);
        assert_eq!(tt.datapoint(2 * MINUTE, 1.0, 10, 0), Decision::Hold);
        assert_eq!(tt.datapoint(3 * MINUTE, 1.0, 10, 0), Decision::ScaleOut(7));
        assert_eq!(tt.datapoint(4 * MINUTE, 1.0, 10, 7), Decision::Hold);
        assert_eq!(
            tt.datapoint(5 * MINUTE, 1.0, 150, 0),
            Decision::ScaleOut(50)
        );
    }

    #[test]
    fn evaluate_measures_the_service_and_acts() {
        let mut m = model();
        (m.initial_tasks, m.min_tasks) = (2, 1);
        let mut tt = TargetTracking::new(&m);
        assert_eq!(tt.period(), MINUTE);
        let mut service = Orchestrator::<u32>::new(2, 1);
        // Both workers busy for three whole minutes: 100% CPU, three datapoints above 60%.
        assert!(service.try_start(0) && service.try_start(0));
        assert_eq!(tt.evaluate(MINUTE, &mut service), 0);
        assert_eq!(tt.evaluate(2 * MINUTE, &mut service), 0);
        assert_eq!(
            tt.evaluate(3 * MINUTE, &mut service),
            2,
            "ceil(2 × 100% / 60%) = 4"
        );
        assert_eq!((service.running(), service.starting()), (2, 2));
        // Idle for fifteen minutes once the new tasks joined: in to the minimum.
        service.task_ready(3 * MINUTE).for_each(drop);
        service.task_ready(3 * MINUTE).for_each(drop);
        assert_eq!(
            (service.finish(3 * MINUTE), service.finish(3 * MINUTE)),
            (None, None)
        );
        let started: u32 = (4..=18)
            .map(|k| tt.evaluate(k * MINUTE, &mut service))
            .sum();
        assert_eq!(started, 0);
        assert_eq!(service.running(), 1);
    }

    #[test]
    fn in_after_fifteen_low_datapoints_and_cooldown() {
        let mut tt = TargetTracking::new(&model());
        for m in 1..15 {
            assert_eq!(tt.datapoint(m * MINUTE, 0.1, 100, 0), Decision::Hold);
        }
        assert_eq!(
            tt.datapoint(15 * MINUTE, 0.1, 100, 0),
            Decision::ScaleIn(83)
        );
        assert_eq!(
            tt.datapoint(16 * MINUTE, 0.1, 17, 0),
            Decision::Hold,
            "cooldown"
        );
        assert_eq!(tt.datapoint(20 * MINUTE, 0.3, 17, 0), Decision::ScaleIn(7));
    }
}
