//! Learning-rate schedules, evaluated per iteration from the epoch position t (fractional epochs from
//! the start of training), so a resumed run continues on exactly the same curve.
//!
//! An optional linear warm-up from `warmup_lr` to the base rate covers `t < warmup_epochs`; after it:
//! - constant: the base rate;
//! - multi-step: × gamma at each milestone epoch (milestones counted from t = 0);
//! - exponential: `base · gamma^floor(t / step_epochs)`, e.g. ×0.97 every 2.4 epochs. As in TF's
//!   `exponential_decay(lr, global_step, decay_steps, rate, staircase=True)`, the steps are counted from
//!   t = 0, warm-up included: the warm-up only overrides the rate of its first epochs, so with a 3-epoch
//!   warm-up and steps of 2.4 epochs the rate at t = 3 is already base·0.97;
//! - cosine: annealing from the base rate to `min_lr` over `t_max_epochs` (or the rest of the run),
//!   measured from the end of the warm-up, then held at `min_lr`.

use crate::recipe::{ScheduleKind, ScheduleSection};

#[derive(Debug, Clone)]
pub struct Schedule {
    pub config: ScheduleSection,
    pub base_lr: f64,
    pub total_epochs: f64,
}

impl Schedule {
    pub fn new(config: &ScheduleSection, base_lr: f64, total_epochs: usize) -> Self {
        Schedule { config: config.clone(), base_lr, total_epochs: total_epochs as f64 }
    }

    /// The learning rate at fractional epoch `t` (epoch 0 starts at t = 0).
    pub fn lr_at(&self, t: f64) -> f64 {
        let c = &self.config;
        if c.warmup_epochs > 0.0 && t < c.warmup_epochs {
            return c.warmup_lr + (self.base_lr - c.warmup_lr) * t / c.warmup_epochs;
        }
        let after = (t - c.warmup_epochs).max(0.0);
        match c.kind {
            ScheduleKind::Constant => self.base_lr,
            ScheduleKind::MultiStep => {
                let passed = c.milestones.iter().filter(|&&m| t >= m).count();
                self.base_lr * c.gamma.powi(passed as i32)
            }
            ScheduleKind::Exponential => {
                // Staircase steps counted from t = 0 (not from the end of the warm-up), as in TF.
                let steps = (t.max(0.0) / c.step_epochs.max(1e-9)).floor();
                self.base_lr * c.gamma.powf(steps)
            }
            ScheduleKind::Cosine => {
                let span =
                    if c.t_max_epochs > 0.0 { c.t_max_epochs } else { (self.total_epochs - c.warmup_epochs).max(1e-9) };
                let progress = (after / span).min(1.0);
                c.min_lr + (self.base_lr - c.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    /// The learning rate of iteration `iter` of epoch `epoch` with `iters_per_epoch` iterations.
    pub fn lr(&self, epoch: usize, iter: usize, iters_per_epoch: usize) -> f64 {
        self.lr_at(epoch as f64 + iter as f64 / iters_per_epoch.max(1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(kind: ScheduleKind) -> ScheduleSection {
        ScheduleSection { kind, ..Default::default() }
    }

    #[test]
    fn paper_imagenet_schedule() {
        // Warm-up 1e-6 → 0.032 over 3 epochs; ×0.97 every 2.4 epochs counted from epoch 0 (TF staircase
        // decay of the global step), so the warm-up hides the first step and t = 3 is already one step in.
        let section = ScheduleSection {
            kind: ScheduleKind::Exponential,
            warmup_epochs: 3.0,
            warmup_lr: 1e-6,
            gamma: 0.97,
            step_epochs: 2.4,
            ..Default::default()
        };
        let s = Schedule::new(&section, 0.032, 350);
        let close = |t: f64, lr: f64| assert!((s.lr_at(t) - lr).abs() < 1e-12, "t={t}: {} vs {lr}", s.lr_at(t));
        close(0.0, 1e-6);
        assert!((s.lr_at(1.5) - (1e-6 + (0.032 - 1e-6) / 2.0)).abs() < 1e-9);
        close(2.9999, 1e-6 + (0.032 - 1e-6) * 2.9999 / 3.0);
        close(3.0, 0.032 * 0.97);
        close(4.7, 0.032 * 0.97);
        close(4.8, 0.032 * 0.97f64.powi(2));
        close(5.3, 0.032 * 0.97f64.powi(2));
        close(7.2, 0.032 * 0.97f64.powi(3));
        close(24.0, 0.032 * 0.97f64.powi(10));
        close(3.0 + 24.0, 0.032 * 0.97f64.powi(11));
        // Per iteration: epoch 4 of 10 iterations, iteration 8 is t = 4.8, the second step.
        assert!((s.lr(4, 7, 10) - 0.032 * 0.97).abs() < 1e-12);
        assert!((s.lr(4, 8, 10) - 0.032 * 0.97f64.powi(2)).abs() < 1e-12);
    }

    #[test]
    fn cifar_multistep_and_cosine() {
        let s = Schedule::new(
            &ScheduleSection { milestones: vec![60.0, 120.0, 160.0], gamma: 0.2, ..section(ScheduleKind::MultiStep) },
            0.1,
            200,
        );
        assert_eq!(s.lr(59, 0, 10), 0.1);
        assert!((s.lr(60, 0, 10) - 0.02).abs() < 1e-12);
        assert!((s.lr(170, 5, 10) - 0.1 * 0.2f64.powi(3)).abs() < 1e-12);
        let c = Schedule::new(&section(ScheduleKind::Cosine), 0.01, 200);
        assert_eq!(c.lr_at(0.0), 0.01);
        assert!((c.lr_at(100.0) - 0.005).abs() < 1e-12);
        assert!(c.lr_at(200.0).abs() < 1e-12);
        let t = Schedule::new(
            &ScheduleSection { t_max_epochs: 50.0, min_lr: 1e-4, ..section(ScheduleKind::Cosine) },
            0.01,
            200,
        );
        assert!((t.lr_at(80.0) - 1e-4).abs() < 1e-12, "held at min after T_max");
        assert_eq!(Schedule::new(&section(ScheduleKind::Constant), 0.3, 5).lr(4, 9, 10), 0.3);
    }
}
