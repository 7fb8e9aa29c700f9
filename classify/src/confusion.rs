//! A classifier's confusion counts: how often each true class was predicted (top-1) as each class.

use anyhow::{ensure, Result};
use serde::Serialize;

/// `counts[true][predicted]` over a split (serialised as that array of rows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ConfusionMatrix {
    pub counts: Vec<Vec<usize>>,
}

impl ConfusionMatrix {
    /// All zeros, `classes × classes`.
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix { counts: vec![vec![0; classes]; classes] }
    }

    pub fn classes(&self) -> usize {
        self.counts.len()
    }

    /// Counts one sample of class `truth` predicted as `predicted`; errors on a class out of range.
    pub fn add(&mut self, truth: usize, predicted: usize) -> Result<()> {
        let n = self.classes();
        ensure!(truth < n && predicted < n, "class {truth} predicted as {predicted}, but there are {n} classes");
        self.counts[truth][predicted] += 1;
        Ok(())
    }

    /// Samples of class `truth`.
    pub fn total(&self, truth: usize) -> usize {
        self.counts[truth].iter().sum()
    }

    /// Samples of class `truth` predicted as `truth`.
    pub fn correct(&self, truth: usize) -> usize {
        self.counts[truth][truth]
    }

    /// Each row as fractions of its class's samples (NaN in the row of a class without samples).
    pub fn normalized(&self) -> Vec<Vec<f64>> {
        self.counts
            .iter()
            .map(|row| {
                let total: usize = row.iter().sum();
                row.iter().map(|&c| if total == 0 { f64::NAN } else { c as f64 / total as f64 }).collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_at_true_row_predicted_column() {
        let mut m = ConfusionMatrix::new(3);
        for (t, p) in [(0, 0), (0, 0), (0, 2), (1, 0), (1, 1), (1, 1), (1, 1)] {
            m.add(t, p).unwrap();
        }
        assert_eq!(m.counts, vec![vec![2, 0, 1], vec![1, 3, 0], vec![0, 0, 0]]);
        assert_eq!((m.correct(0), m.total(0)), (2, 3));
        assert_eq!((m.correct(1), m.total(1)), (3, 4));
        let f = m.normalized();
        assert_eq!(f[1], vec![0.25, 0.75, 0.0]);
        assert!(f[2].iter().all(|v| v.is_nan()), "no samples of class 2");
        assert!(m.add(3, 0).is_err() && m.add(0, 3).is_err());
        assert_eq!(serde_json::to_string(&m).unwrap(), "[[2,0,1],[1,3,0],[0,0,0]]");
    }
}
