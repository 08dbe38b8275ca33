/* Anchor targets, proposals and RoI sampling (box_targets.h has the
 * reference's semantics, corner cases and the order of the random draws). */
#include "box_targets.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "boxes.h"

DetectTargetOptions detect_target_defaults(void) {
    DetectTargetOptions o;
    memset(&o, 0, sizeof o);
    o.rpn_pos_iou = 0.7f;
    o.rpn_neg_iou = 0.3f;
    o.rpn_batch = 256;
    o.rpn_fg_fraction = 0.5f;
    o.rpn_clobber_positives = 0;
    o.pre_nms_train = 12000;
    o.post_nms_train = 2000;
    o.pre_nms_test = 6000;
    o.post_nms_test = 300;
    o.rpn_nms = 0.7f;
    o.min_size = 0.0f;
    o.delta_clamp = 0.0;
    o.rois_per_image = 256;
    o.roi_fg_fraction = 0.25f;
    o.roi_fg_iou = 0.5f;
    o.roi_bg_hi = 0.5f;
    o.roi_bg_lo = 0.0f;
    o.box_stds[0] = 0.1f;
    o.box_stds[1] = 0.1f;
    o.box_stds[2] = 0.2f;
    o.box_stds[3] = 0.2f;
    o.nms_gt_or_equal = 0;
    return o;
}

/* Per candidate: the max over the gt columns and the first gt reaching it.
 * No gt: the reference's all-padding gt gives 0 (a masked row -1). */
static void row_max(const float *ov, const float *cand, int n, int n_gt, float *mx, int *arg) {
    for (int i = 0; i < n; i++) {
        if (n_gt == 0) {
            const float *b = cand + 4 * i;
            const int pad = b[2] - b[0] + 1.0f == 1.0f && b[3] - b[1] + 1.0f == 1.0f;
            mx[i] = pad ? -1.0f : 0.0f;
            arg[i] = -1;
            continue;
        }
        const float *row = ov + (size_t)i * n_gt;
        int best = 0;
        for (int j = 1; j < n_gt; j++)
            if (row[j] > row[best]) best = j;
        mx[i] = row[best];
        arg[i] = best;
    }
}

/* set a random n_drop of the anchors labelled `which` back to -1: a
 * permutation of those anchors (in index order), its first n_drop */
static int disable_random(int8_t *labels, const int *inside, int n_inside, int which, int count, int n_drop,
                          Rng *rng) {
    int *idx = malloc((size_t)count * sizeof *idx);
    int32_t *perm = malloc((size_t)count * sizeof *perm);
    if (!idx || !perm) {
        free(idx);
        free(perm);
        return -1;
    }
    int c = 0;
    for (int t = 0; t < n_inside; t++)
        if (labels[inside[t]] == which) idx[c++] = inside[t];
    rng_permutation(rng, perm, count);
    for (int d = 0; d < n_drop; d++) labels[idx[perm[d]]] = -1;
    free(idx);
    free(perm);
    return 0;
}

static int count_label(const int8_t *labels, const int *inside, int n_inside, int which) {
    int c = 0;
    for (int t = 0; t < n_inside; t++) c += labels[inside[t]] == which;
    return c;
}

int anchor_targets(const DetectTargetOptions *o, const float *anchors, int n_anchors, int H, int W,
                   const float *gt, int n_gt, Rng *rng, int8_t *labels, float *targets, float *inside_w,
                   int *n_fg) {
    for (int i = 0; i < n_anchors; i++) {
        labels[i] = -1;
        inside_w[i] = 0.0f;
    }
    memset(targets, 0, (size_t)n_anchors * 4 * sizeof *targets);
    if (n_fg) *n_fg = 0;

    int *inside = malloc((size_t)(n_anchors > 0 ? n_anchors : 1) * sizeof *inside);
    if (!inside) return -1;
    int n_in = 0;
    for (int i = 0; i < n_anchors; i++) {
        const float *a = anchors + 4 * i;
        if (a[0] >= 0.0f && a[1] >= 0.0f && a[2] < (float)W && a[3] < (float)H) inside[n_in++] = i;
    }
    if (n_in == 0) {
        free(inside);
        return 0;
    }

    /* the inside anchors packed, their overlaps with every gt */
    float *in_boxes = malloc((size_t)n_in * 4 * sizeof *in_boxes);
    float *gt_boxes = malloc((size_t)(n_gt > 0 ? n_gt : 1) * 4 * sizeof *gt_boxes);
    float *ov = malloc((size_t)n_in * (size_t)(n_gt > 0 ? n_gt : 1) * sizeof *ov);
    float *mx = malloc((size_t)n_in * sizeof *mx);
    int *arg = malloc((size_t)n_in * sizeof *arg);
    float *gt_max = malloc((size_t)(n_gt > 0 ? n_gt : 1) * sizeof *gt_max);
    int ret = -1;
    if (!in_boxes || !gt_boxes || !ov || !mx || !arg || !gt_max) goto done;
    for (int t = 0; t < n_in; t++) memcpy(in_boxes + 4 * t, anchors + 4 * inside[t], 4 * sizeof(float));
    for (int j = 0; j < n_gt; j++) memcpy(gt_boxes + 4 * j, gt + 5 * j, 4 * sizeof(float));
    box_iou_matrix(in_boxes, n_in, gt_boxes, n_gt, ov);
    row_max(ov, in_boxes, n_in, n_gt, mx, arg);
    for (int j = 0; j < n_gt; j++) {
        float m = ov[j];
        for (int t = 1; t < n_in; t++)
            if (ov[(size_t)t * n_gt + j] > m) m = ov[(size_t)t * n_gt + j];
        /* a gt that overlaps nothing would otherwise claim every anchor with
         * IoU 0; the reference's 1e-5 matches none */
        gt_max[j] = m == 0.0f ? 1e-5f : m;
    }

    if (!o->rpn_clobber_positives)
        for (int t = 0; t < n_in; t++)
            if (mx[t] < o->rpn_neg_iou) labels[inside[t]] = 0;
    for (int t = 0; t < n_in; t++) {
        const float *row = ov + (size_t)t * n_gt;
        for (int j = 0; j < n_gt; j++)
            if (row[j] == gt_max[j]) {
                labels[inside[t]] = 1;
                break;
            }
    }
    for (int t = 0; t < n_in; t++)
        if (mx[t] >= o->rpn_pos_iou) labels[inside[t]] = 1;
    if (o->rpn_clobber_positives)
        for (int t = 0; t < n_in; t++)
            if (mx[t] < o->rpn_neg_iou) labels[inside[t]] = 0;

    /* subsample: fg first, then bg against what fg kept */
    const int fg_cap = (int)((double)o->rpn_fg_fraction * (double)o->rpn_batch); /* int(), truncating */
    int fg = count_label(labels, inside, n_in, 1);
    if (fg > fg_cap) {
        if (disable_random(labels, inside, n_in, 1, fg, fg - fg_cap, rng)) goto done;
        fg = fg_cap;
    }
    const int bg_cap = o->rpn_batch - fg;
    int bg = count_label(labels, inside, n_in, 0);
    if (bg > bg_cap) {
        if (disable_random(labels, inside, n_in, 0, bg, bg - bg_cap, rng)) goto done;
        bg = bg_cap;
    }

    for (int t = 0; t < n_in; t++) {
        const int i = inside[t];
        if (n_gt > 0) box_encode(anchors + 4 * i, gt + 5 * arg[t], targets + 4 * i);
        if (labels[i] == 1) inside_w[i] = 1.0f;
    }
    if (n_fg) *n_fg = fg;
    ret = fg + bg;
done:
    free(inside);
    free(in_boxes);
    free(gt_boxes);
    free(ov);
    free(mx);
    free(arg);
    free(gt_max);
    return ret;
}

/* ------------------------------------------------------------- proposals */

int proposals(const DetectTargetOptions *o, int train, const float *anchors, const float *fg, const float *deltas,
              int n_anchors, int H, int W, double im_scale, float *rois, float *scores) {
    const int pre_nms = train ? o->pre_nms_train : o->pre_nms_test;
    const int post_nms = train ? o->post_nms_train : o->post_nms_test;
    if (post_nms <= 0) return 0;
    memset(rois, 0, (size_t)post_nms * 4 * sizeof *rois);
    memset(scores, 0, (size_t)post_nms * sizeof *scores);
    if (n_anchors <= 0) return 0;

    const size_t n = (size_t)n_anchors;
    float *boxes = malloc(n * 4 * sizeof *boxes);
    float *cand_s = malloc(n * sizeof *cand_s);
    int *cand = malloc(n * sizeof *cand);
    int *order = malloc(n * sizeof *order);
    float *top_b = malloc(n * 4 * sizeof *top_b);
    float *top_s = malloc(n * sizeof *top_s);
    int *keep = malloc((size_t)post_nms * sizeof *keep);
    int ret = -1;
    if (!boxes || !cand_s || !cand || !order || !top_b || !top_s || !keep) goto done;

    const float min_px = (float)(o->min_size * im_scale);
    int n_cand = 0;
    for (int i = 0; i < n_anchors; i++) {
        float *b = boxes + 4 * i;
        box_decode(anchors + 4 * i, deltas + 4 * i, o->delta_clamp, b);
        box_clip(b, W, H);
        if (o->min_size > 0.0f && !(b[2] - b[0] + 1.0f >= min_px && b[3] - b[1] + 1.0f >= min_px)) continue;
        cand[n_cand] = i;
        cand_s[n_cand] = fg[i];
        n_cand++;
    }
    argsort_desc(cand_s, n_cand, order);
    const int n_top = pre_nms > 0 && pre_nms < n_cand ? pre_nms : n_cand;
    for (int r = 0; r < n_top; r++) {
        const int i = cand[order[r]];
        memcpy(top_b + 4 * r, boxes + 4 * i, 4 * sizeof(float));
        top_s[r] = fg[i];
    }
    const int n_keep = nms(top_b, top_s, n_top, o->rpn_nms, o->nms_gt_or_equal, keep, post_nms, NULL);
    if (n_keep < 0) goto done;
    for (int k = 0; k < n_keep; k++) {
        memcpy(rois + 4 * k, top_b + 4 * keep[k], 4 * sizeof(float));
        scores[k] = top_s[keep[k]];
    }
    ret = n_keep;
done:
    free(boxes);
    free(cand_s);
    free(cand);
    free(order);
    free(top_b);
    free(top_s);
    free(keep);
    return ret;
}

/* ---------------------------------------------------------- RoI sampling */

int roi_sample(const DetectTargetOptions *o, const float *rois, int n_rois, const float *gt, int n_gt, Rng *rng,
               float *out_rois, int32_t *out_labels, float *out_targets, float *out_inside_w) {
    const int R = o->rois_per_image;
    const int n = n_rois + n_gt;
    const size_t nz = (size_t)(n > 0 ? n : 1), gz = (size_t)(n_gt > 0 ? n_gt : 1);
    float *cand = malloc(nz * 4 * sizeof *cand);
    float *gt_boxes = malloc(gz * 4 * sizeof *gt_boxes);
    float *ov = malloc(nz * gz * sizeof *ov);
    float *mx = malloc(nz * sizeof *mx);
    int *arg = malloc(nz * sizeof *arg);
    int *fg_idx = malloc(nz * sizeof *fg_idx);
    int *bg_idx = malloc(nz * sizeof *bg_idx);
    int32_t *perm = malloc(nz * sizeof *perm);
    int *pick = malloc((size_t)(R > 0 ? R : 1) * sizeof *pick);
    int ret = -2;
    if (!cand || !gt_boxes || !ov || !mx || !arg || !fg_idx || !bg_idx || !perm || !pick) goto done;

    if (n_rois > 0) memcpy(cand, rois, (size_t)n_rois * 4 * sizeof *cand);
    for (int j = 0; j < n_gt; j++) {
        memcpy(cand + 4 * (n_rois + j), gt + 5 * j, 4 * sizeof(float));
        memcpy(gt_boxes + 4 * j, gt + 5 * j, 4 * sizeof(float));
    }
    box_iou_matrix(cand, n, gt_boxes, n_gt, ov);
    row_max(ov, cand, n, n_gt, mx, arg);

    int n_fg = 0, n_bg = 0;
    for (int i = 0; i < n; i++) {
        if (mx[i] >= o->roi_fg_iou) fg_idx[n_fg++] = i;
        if (mx[i] < o->roi_bg_hi && mx[i] >= o->roi_bg_lo) bg_idx[n_bg++] = i;
    }
    /* np.round(0.25 * 256) in double; rint is half to even as numpy */
    int fg_cap = (int)rint((double)o->roi_fg_fraction * (double)R);
    if (fg_cap == 0) fg_cap = 1;

    int fg_rows;
    if (n_fg > 0 && n_bg > 0) {
        fg_rows = n_fg < fg_cap ? n_fg : fg_cap;
        rng_permutation(rng, perm, n_fg);
        for (int r = 0; r < fg_rows; r++) pick[r] = fg_idx[perm[r]];
        for (int r = fg_rows; r < R; r++) pick[r] = bg_idx[rng_below(rng, (uint64_t)n_bg)];
    } else if (n_fg > 0) {
        fg_rows = R;
        for (int r = 0; r < R; r++) pick[r] = fg_idx[rng_below(rng, (uint64_t)n_fg)];
    } else if (n_bg > 0) {
        fg_rows = 0;
        for (int r = 0; r < R; r++) pick[r] = bg_idx[rng_below(rng, (uint64_t)n_bg)];
    } else {
        ret = -1;
        goto done;
    }

    for (int r = 0; r < R; r++) {
        const int i = pick[r];
        memcpy(out_rois + 4 * r, cand + 4 * i, 4 * sizeof(float));
        const int32_t label = r < fg_rows && arg[i] >= 0 ? (int32_t)gt[5 * arg[i] + 4] : 0;
        out_labels[r] = label;
        float *t = out_targets + 4 * r;
        if (label > 0) {
            box_encode(cand + 4 * i, gt + 5 * arg[i], t);
            for (int c = 0; c < 4; c++) t[c] = t[c] / o->box_stds[c]; /* means are 0 */
            out_inside_w[r] = 1.0f;
        } else {
            t[0] = t[1] = t[2] = t[3] = 0.0f;
            out_inside_w[r] = 0.0f;
        }
    }
    ret = fg_rows;
done:
    free(cand);
    free(gt_boxes);
    free(ov);
    free(mx);
    free(arg);
    free(fg_idx);
    free(bg_idx);
    free(perm);
    free(pick);
    return ret;
}
