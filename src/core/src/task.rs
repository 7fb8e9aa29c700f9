//! The two pipelines: what a recipe is for, what a checkpoint holds, what `config show` parses.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Image classification (one label per image).
    #[default]
    Classify,
    /// Object detection (boxes and labels).
    Detect,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Classify => "classify",
            Task::Detect => "detect",
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
