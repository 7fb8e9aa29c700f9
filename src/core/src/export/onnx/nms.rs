//! The `--nms` tail of a detector: ONNX `NonMaxSuppression` over the decoded boxes `[N, P, 4]` and the
//! foreground scores (`scores[:, :, 1:]` transposed to `[N, C−1, P]`), thresholds baked in as constants.
//! Output `selected` int64 `[M, 3]`: rows `(batch_index, class_index, box_index)`, class 0 = label 1.

use super::proto::{data_type, AttributeProto, NodeProto, TensorProto};
use super::{Built, Dim, Io};

/// What `NonMaxSuppression` keeps (`detect predict`'s `--conf`, `--iou`, `--max-det`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NmsParams {
    pub score_threshold: f32,
    pub iou_threshold: f32,
    pub max_det: usize,
}

fn node(op: &str, input: Vec<String>, output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input,
        output: vec![output.into()],
        name: format!("nms_{output}"),
        op_type: op.into(),
        attribute,
        ..Default::default()
    }
}

fn constant(name: &str, data_type: i32, raw: Vec<u8>) -> TensorProto {
    TensorProto { dims: vec![1], data_type, name: name.into(), raw_data: raw }
}

/// Appends the NMS nodes over the outputs named `boxes` and `scores` and the output `selected`.
pub fn append(built: &mut Built, boxes: &str, scores: &str, p: NmsParams) {
    let l = &mut built.lowered;
    let i64s = |v: i64| v.to_le_bytes().to_vec();
    l.initializers.push(constant("nms_start", data_type::INT64, i64s(1)));
    l.initializers.push(constant("nms_end", data_type::INT64, i64s(i64::MAX)));
    l.initializers.push(constant("nms_axis", data_type::INT64, i64s(2)));
    l.initializers.push(constant("nms_max_output", data_type::INT64, i64s(p.max_det as i64)));
    l.initializers.push(constant("nms_iou_threshold", data_type::FLOAT, p.iou_threshold.to_le_bytes().to_vec()));
    l.initializers.push(constant("nms_score_threshold", data_type::FLOAT, p.score_threshold.to_le_bytes().to_vec()));
    l.nodes.push(node(
        "Slice",
        vec![scores.into(), "nms_start".into(), "nms_end".into(), "nms_axis".into()],
        "nms_foreground",
        vec![],
    ));
    l.nodes.push(node(
        "Transpose",
        vec!["nms_foreground".into()],
        "nms_class_scores",
        vec![AttributeProto {
            name: "perm".into(),
            r#type: super::proto::attribute_type::INTS,
            ints: vec![0, 2, 1],
            ..Default::default()
        }],
    ));
    l.nodes.push(node(
        "NonMaxSuppression",
        vec![
            boxes.into(),
            "nms_class_scores".into(),
            "nms_max_output".into(),
            "nms_iou_threshold".into(),
            "nms_score_threshold".into(),
        ],
        "selected",
        vec![AttributeProto {
            name: "center_point_box".into(),
            r#type: super::proto::attribute_type::INT,
            i: 0,
            ..Default::default()
        }],
    ));
    l.outputs.push("selected".into());
    built.outputs.push(Io {
        name: "selected".into(),
        elem_type: data_type::INT64,
        shape: vec![Dim::Named("num_selected".into()), Dim::Fixed(3)],
    });
}
