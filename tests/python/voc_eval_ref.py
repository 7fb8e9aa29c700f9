#!/usr/bin/env python3
"""Reference PASCAL VOC detection evaluation, written the way py-faster-rcnn's ``voc_eval.py`` is.

An independent oracle for ``skipblock_detect::eval`` (the Rust tests run it).  Plain Python only
(no numpy): the numpy expressions of the original are spelled out with lists, keeping the same code
shape and the same floating-point semantics (float64, ``np.arange(0., 1.1, 0.1)`` thresholds computed
as ``i * 0.1``).

Choices where the devkit is undefined or crashes (the Rust side makes the same ones):

* ties in score keep file order (a stable sort; ``np.argsort`` does not promise one);
* a class without non-difficult ground truth (npos == 0) gets AP 0 instead of NaN; it counts in the
  mAP when it has any ground truth or any detection, and is left out when it has neither;
* a detection on an image outside the split is a false positive (the devkit raises KeyError).

Usage:
    voc_eval_ref.py --root VOCdevkit/VOC2007 --split test --detections DIR --classes a,b,c [--use07]
        [--iou 0.5]
Prints JSON ``{"aps": {class: ap}, "map": m}``.
"""

import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET


_RECS_CACHE = {}


def parse_rec(filename):
    """Parse a PASCAL VOC xml file."""
    tree = ET.parse(filename)
    objects = []
    for obj in tree.findall('object'):
        obj_struct = {}
        obj_struct['name'] = obj.find('name').text.strip()
        difficult = obj.find('difficult')
        obj_struct['difficult'] = int(difficult.text) if difficult is not None else 0
        bbox = obj.find('bndbox')
        obj_struct['bbox'] = [float(bbox.find('xmin').text),
                              float(bbox.find('ymin').text),
                              float(bbox.find('xmax').text),
                              float(bbox.find('ymax').text)]
        objects.append(obj_struct)
    return objects


def voc_ap(rec, prec, use_07_metric=False):
    """ap = voc_ap(rec, prec, [use_07_metric])
    Compute VOC AP given precision and recall.
    If use_07_metric is true, uses the VOC 07 11 point method (default:False).
    """
    if use_07_metric:
        # 11 point metric
        ap = 0.
        for t in [i * 0.1 for i in range(11)]:  # np.arange(0., 1.1, 0.1)
            above = [p for r, p in zip(rec, prec) if r >= t]
            if len(above) == 0:
                p = 0
            else:
                p = max(above)
            ap = ap + p / 11.
    else:
        # correct AP calculation
        # first append sentinel values at the end
        mrec = [0.] + list(rec) + [1.]
        mpre = [0.] + list(prec) + [0.]

        # compute the precision envelope
        for i in range(len(mpre) - 1, 0, -1):
            mpre[i - 1] = max(mpre[i - 1], mpre[i])

        # to calculate area under PR curve, look for points
        # where X axis (recall) changes value
        idx = [i for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i]]

        # and sum (\Delta recall) * prec
        ap = sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in idx)
    return ap


def voc_eval(detpath, annopath, imagesetfile, classname, ovthresh=0.5, use_07_metric=False):
    """Returns (rec, prec, ap, counted) for one class.

    detpath.format(classname) is the result file, annopath.format(imagename) an annotation file,
    imagesetfile the list of image ids.
    """
    with open(imagesetfile, 'r') as f:
        lines = f.readlines()
    imagenames = [x.strip() for x in lines if x.strip()]

    # load annots (cached per annotation folder, as the devkit caches them in a pickle)
    key = (annopath, imagesetfile)
    if key not in _RECS_CACHE:
        _RECS_CACHE[key] = {name: parse_rec(annopath.format(name)) for name in imagenames}
    recs = _RECS_CACHE[key]

    # extract gt objects for this class
    class_recs = {}
    npos = 0
    any_gt = False
    for imagename in imagenames:
        R = [obj for obj in recs[imagename] if obj['name'] == classname]
        bbox = [x['bbox'] for x in R]
        difficult = [bool(x['difficult']) for x in R]
        det = [False] * len(R)
        npos = npos + sum(1 for d in difficult if not d)
        any_gt = any_gt or len(R) > 0
        class_recs[imagename] = {'bbox': bbox, 'difficult': difficult, 'det': det}

    # read dets
    detfile = detpath.format(classname)
    lines = []
    if os.path.exists(detfile):
        with open(detfile, 'r') as f:
            lines = f.readlines()

    splitlines = [x.strip().split() for x in lines if x.strip()]
    image_ids = [x[0] for x in splitlines]
    confidence = [float(x[1]) for x in splitlines]
    BB = [[float(z) for z in x[2:]] for x in splitlines]

    # sort by confidence (stable: ties keep file order)
    sorted_ind = sorted(range(len(confidence)), key=lambda k: -confidence[k])
    BB = [BB[k] for k in sorted_ind]
    image_ids = [image_ids[k] for k in sorted_ind]

    # go down dets and mark TPs and FPs
    nd = len(image_ids)
    tp = [0.] * nd
    fp = [0.] * nd
    empty = {'bbox': [], 'difficult': [], 'det': []}
    for d in range(nd):
        R = class_recs.get(image_ids[d], empty)
        bb = BB[d]
        ovmax = -float('inf')
        BBGT = R['bbox']
        jmax = -1
        for j, g in enumerate(BBGT):
            # compute overlaps
            # intersection
            ixmin = max(g[0], bb[0])
            iymin = max(g[1], bb[1])
            ixmax = min(g[2], bb[2])
            iymax = min(g[3], bb[3])
            iw = max(ixmax - ixmin + 1., 0.)
            ih = max(iymax - iymin + 1., 0.)
            inters = iw * ih

            # union
            uni = ((bb[2] - bb[0] + 1.) * (bb[3] - bb[1] + 1.) +
                   (g[2] - g[0] + 1.) * (g[3] - g[1] + 1.) - inters)
            overlap = inters / uni
            if overlap > ovmax:  # np.argmax: the first maximum
                ovmax = overlap
                jmax = j

        if ovmax > ovthresh:
            if not R['difficult'][jmax]:
                if not R['det'][jmax]:
                    tp[d] = 1.
                    R['det'][jmax] = 1
                else:
                    fp[d] = 1.
        else:
            fp[d] = 1.

    # compute precision recall
    for k in range(1, nd):
        fp[k] += fp[k - 1]
        tp[k] += tp[k - 1]
    eps = sys.float_info.epsilon  # np.finfo(np.float64).eps
    prec = [t / max(t + f, eps) for t, f in zip(tp, fp)]
    if npos == 0:
        return [], prec, 0.0, any_gt or nd > 0
    rec = [t / float(npos) for t in tp]
    ap = voc_ap(rec, prec, use_07_metric)
    return rec, prec, ap, True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--root', required=True, help='VOCdevkit/VOC2007 (Annotations/, ImageSets/Main/)')
    parser.add_argument('--split', default='test')
    parser.add_argument('--detections', required=True, help='folder of comp4_det_<split>_<class>.txt')
    parser.add_argument('--classes', required=True, help='comma-separated class names')
    parser.add_argument('--use07', action='store_true', help='VOC2007 11-point metric')
    parser.add_argument('--iou', type=float, default=0.5)
    args = parser.parse_args()

    annopath = os.path.join(args.root, 'Annotations', '{}.xml')
    imagesetfile = os.path.join(args.root, 'ImageSets', 'Main', args.split + '.txt')
    detpath = os.path.join(args.detections, 'comp4_det_' + args.split + '_{}.txt')
    aps = {}
    counted = []
    for cls in [c for c in args.classes.split(',') if c]:
        _, _, ap, in_map = voc_eval(detpath, annopath, imagesetfile, cls, args.iou, args.use07)
        aps[cls] = ap
        if in_map:
            counted.append(ap)
    m = sum(counted) / len(counted) if counted else 0.0
    print(json.dumps({'aps': aps, 'map': m}))


if __name__ == '__main__':
    main()
