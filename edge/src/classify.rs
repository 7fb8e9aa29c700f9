//! Top-k classes from a classifier's logits, as `skipblock classify predict` reports them.

use skipblock_pixels::predictions::TopK;

/// Softmax of one row of logits, in f32 (as the predictor's `softmax(-1, Float)`).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// The `k` largest probabilities of `logits` (ties: the lower class first), named from `classes`.
pub fn top_k(logits: &[f32], k: usize, classes: &[String]) -> TopK {
    let p = softmax(logits);
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    order.truncate(k.min(p.len()));
    TopK {
        classes: order.iter().map(|&c| c as i64).collect(),
        names: order.iter().map(|&c| classes.get(c).cloned()).collect(),
        probabilities: order.iter().map(|&c| p[c] as f64).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skipblock_pixels::predictions::ClassPrediction;

    #[test]
    fn top_k_orders_by_probability_and_names_known_classes() {
        let t = top_k(&[0.5, 3.0, -1.0, 3.0], 3, &["a".into(), "b".into()]);
        assert_eq!(t.classes, vec![1, 3, 0]);
        assert_eq!(t.names, vec![Some("b".to_string()), None, Some("a".to_string())]);
        let sum: f32 = softmax(&[0.5, 3.0, -1.0, 3.0]).iter().sum();
        assert!((sum - 1.0).abs() < 1e-6);
        assert!((t.probabilities[0] - t.probabilities[1]).abs() < 1e-9 && t.probabilities[1] > t.probabilities[2]);
        assert_eq!(top_k(&[1.0, 2.0], 5, &[]).classes.len(), 2);
        let json = serde_json::to_string(&ClassPrediction { image: std::path::Path::new("x.jpg"), top: &t }).unwrap();
        assert!(json.starts_with(r#"{"image":"x.jpg","classes":[1,3,0],"names":["b",null,"a"],"probabilities":["#));
    }
}
