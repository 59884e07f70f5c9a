//! This process's metrics in tests, read as a change across the step under test: counters are
//! global to the process, so an absolute value or a line's mere presence could come from
//! anything that ran before.

/// The sum of every sample of `name` whose labels contain each of `labels` (`key="value"`).
pub fn value(name: &str, labels: &[&str]) -> f64 {
    fleet_platform::metrics::sum(name, labels)
}

/// A reading to compare with later: `Delta::of(name, labels)`, then `.since()`.
pub struct Delta {
    name: &'static str,
    labels: Vec<&'static str>,
    before: f64,
}

impl Delta {
    pub fn of(name: &'static str, labels: &[&'static str]) -> Self {
        fleet_platform::metrics::install();
        Self { name, labels: labels.to_vec(), before: value(name, labels) }
    }

    /// How much the metric grew since [`Self::of`].
    pub fn since(&self) -> f64 {
        value(self.name, &self.labels) - self.before
    }
}
