//! `model summary`: per-layer shapes, parameters and multiply-adds, counted from a traced forward pass of
//! the real network at batch 1 (convolutions and linear layers, as the paper counts), and the total of
//! trainable parameters from the variable store.

use super::arch::{Arch, Stem, Table4Params};
use super::trace::{self, LayerRecord};
use serde::Serialize;
use tch::{nn::VarStore, Device, Kind, Tensor};

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub arch: Arch,
    pub input_size: i64,
    pub num_classes: i64,
    /// Trainable parameters (BN running statistics excluded).
    pub params: i64,
    /// Multiply-adds of conv and linear layers for one image.
    pub macs: i64,
    pub layers: Vec<LayerRecord>,
    /// The input stem (classifiers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stem: Option<Stem>,
    /// The paper's Table 4 count for this architecture, where it lists one, and the configuration it
    /// counts (printed next to ours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table4: Option<Table4Params>,
}

/// Traces `forward` on a zero image of `input`×`input` and totals what it saw.
pub fn summarize(arch: Arch, vs: &VarStore, input: i64, num_classes: i64, forward: impl FnOnce(&Tensor)) -> Summary {
    let xs = Tensor::zeros([1, 3, input, input], (Kind::Float, Device::Cpu));
    let ((), layers, _) = trace::traced(false, || tch::no_grad(|| forward(&xs)));
    let params = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    let macs = layers.iter().map(|l| l.macs).sum();
    Summary { arch, input_size: input, num_classes, params, macs, layers, stem: None, table4: None }
}

impl Summary {
    /// A plain-text table, one line per layer, then the totals.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<34} {:<12} {:>20} {:>20} {:>10} {:>13}\n",
            "layer", "kind", "input", "output", "params", "MACs"
        ));
        for l in &self.layers {
            out.push_str(&format!(
                "{:<34} {:<12} {:>20} {:>20} {:>10} {:>13}\n",
                l.name,
                l.kind,
                shape(&l.input),
                shape(&l.output),
                group(l.params),
                group(l.macs)
            ));
        }
        out.push_str(&format!(
            "{}: {} trainable parameters ({:.2} M), {} multiply-adds ({:.1} M) at {}x{}, {} classes\n",
            self.arch,
            group(self.params),
            self.params as f64 / 1e6,
            group(self.macs),
            self.macs as f64 / 1e6,
            self.input_size,
            self.input_size,
            self.num_classes
        ));
        if let Some(stem) = self.stem {
            out.push_str(&format!("stem: {stem}\n"));
        }
        if let Some(t) = self.table4 {
            out.push_str(&format!(
                "Table 4 (CIFAR-100 comparison): {:.2} M parameters, as counted with the {} stem and {} classes\n",
                t.params / 1e6,
                t.stem,
                t.classes
            ));
        }
        out
    }
}

fn shape(s: &[i64]) -> String {
    s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

/// 5532352 → "5,532,352".
pub fn group(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}
