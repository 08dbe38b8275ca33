/* detect.backbone_init (experiments/backbone_init.h): the detector's backbone
 * from an imagenet_resnet18 run's checkpoint.
 *
 * A results file (its name holds a ':') gets an imagenet_resnet18 run whose
 * checkpoint is written directly (no training: the params of a model built
 * at 64x64, which are those of 224x224, overwritten with random values so
 * that no copied tensor can equal the detector's own init by chance). A
 * detector of width 64 then takes it: every backbone layer's weight, bias
 * and buffers equal the checkpoint's bitwise, every other layer (RPN, head
 * Linears) keeps its init bitwise, and the counts are those of a ResNet-18
 * worked out by hand. An fp32-conv checkpoint into the binary detector (the
 * plain entry point, counts read from its message) keeps the binary convs'
 * alpha and quantizer range. Then the errors, each message
 * checked: width 16 (conv1, 64 vs 16 channels; the detector unchanged), a run
 * not in the file, a missing file, a cifar_resnet20 run, a run without a
 * checkpoint, a malformed spec, a backbone layer the checkpoint lacks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backbone_init.h"
#include "frcnn.h"
#include "results_h5.h"
#include "testutil.h"

/* A ResNet-18 by hand (torchvision's 11,689,512 without fc's 512 * 1000 + 1000):
 * convs 11,166,912 + BN gamma/beta 2 * 4800 = 11,176,512; the 16 binary convs'
 * alpha add 4 * (64 + 128 + 256 + 512) = 3840. BN running stats 2 * 4800, the
 * binary convs' quantizer range 2 each. Layers with tensors: stem 2, stage 1
 * 8, stages 2-4 10 each (the downsample conv and BN). */
#define R18_PARAMS_FP32 11176512u
#define R18_ALPHA 3840u
#define R18_BUFFERS_FP32 9600u
#define R18_LAYERS 40

static Model g_ckpt_bin, g_ckpt_fp32; /* what the checkpoints hold */

/* Declare run `run` of arch/dataset/conv in f; with a checkpoint (step 7) of
 * random params and buffers kept in *keep when keep is not NULL. */
static int add_run(ResultsFile *f, const char *run, const char *arch, const char *dataset, ConvKind conv, int side,
                   int classes, Model *keep, uint64_t seed) {
    RunConfig c;
    config_defaults(&c);
    snprintf(c.arch, sizeof c.arch, "%s", arch);
    snprintf(c.dataset, sizeof c.dataset, "%s", dataset);
    c.conv = conv;
    char *yaml = config_to_yaml(&c);
    if (!yaml) return -1;
    if (!keep) {
        int rc = results_run_declare(f, run, yaml) == 1 ? 0 : -1;
        free(yaml);
        return rc;
    }
    RunLog *r = results_run_begin(f, run, yaml);
    free(yaml);
    char err[300];
    if (!r || model_build(keep, arch, conv, 3, side, side, classes, err, sizeof err) || model_alloc(keep, 1)) {
        fprintf(stderr, "building %s: %s\n", arch, keep->err);
        return -1;
    }
    model_init_params(keep, seed);
    Rng rng = rng_stream(seed, RNG_TEST, 0, 0);
    tu_fill_uniform(keep->params, keep->n_params, -1, 1, &rng);
    tu_fill_uniform(keep->buffers, keep->n_buffers, -1, 1, &rng);
    const CkptArray a[2] = {{"params", CK_REAL, keep->n_params, keep->params},
                            {"buffers", CK_REAL, keep->n_buffers, keep->buffers}};
    if (runlog_checkpoint_save(r, 7, a, 2)) return -1;
    return runlog_end(r, "complete", 1, 1, 1);
}

typedef struct {
    Model base, head;
    real *p0[2], *b0[2]; /* the params and buffers right after model_init_params */
} Detector;

static int detector(Detector *d, int width, uint64_t seed) {
    char err[300];
    memset(d, 0, sizeof *d);
    if (frcnn_build_base(&d->base, width, RPN_CONV_BIDET, CONV_BINARY, 64, 64, 9, (real)1e-8, err, sizeof err) ||
        frcnn_build_head(&d->head, width, CONV_BINARY, 7, 21, (real)1e-8, err, sizeof err) ||
        model_alloc(&d->base, 1) || model_alloc(&d->head, 1)) {
        fprintf(stderr, "building the detector: %s\n", err);
        return -1;
    }
    Model *m[2] = {&d->base, &d->head};
    for (int k = 0; k < 2; k++) {
        model_init_params(m[k], seed + (uint64_t)k);
        d->p0[k] = tu_alloc(m[k]->n_params);
        d->b0[k] = tu_alloc(m[k]->n_buffers);
        memcpy(d->p0[k], m[k]->params, m[k]->n_params * sizeof(real));
        memcpy(d->b0[k], m[k]->buffers, m[k]->n_buffers * sizeof(real));
    }
    return 0;
}

static void detector_free(Detector *d) {
    model_free(&d->base);
    model_free(&d->head);
    for (int k = 0; k < 2; k++) {
        free(d->p0[k]);
        free(d->b0[k]);
    }
}

static int unchanged(const Detector *d) {
    const Model *m[2] = {&d->base, &d->head};
    for (int k = 0; k < 2; k++)
        if (memcmp(m[k]->params, d->p0[k], m[k]->n_params * sizeof(real)) ||
            memcmp(m[k]->buffers, d->b0[k], m[k]->n_buffers * sizeof(real)))
            return 0;
    return 1;
}

/* back to the init: the next case starts from the same detector */
static void reset(Detector *d) {
    Model *m[2] = {&d->base, &d->head};
    for (int k = 0; k < 2; k++) {
        memcpy(m[k]->params, d->p0[k], m[k]->n_params * sizeof(real));
        memcpy(m[k]->buffers, d->b0[k], m[k]->n_buffers * sizeof(real));
    }
}

static const Layer *by_name(const Model *m, const char *name) {
    for (int i = 0; i < m->n_layers; i++)
        if (!strcmp(m->layers[i].name, name)) return &m->layers[i];
    return NULL;
}

/* Every tensor of the detector: backbone layers equal ck's bitwise where ck
 * has the tensor at that size (and differed from the init before), the rest
 * equal the init. Returns the non-backbone layers with tensors seen. */
static int check_tensors(const Detector *d, const Model *ck, const char *what) {
    const Model *m[2] = {&d->base, &d->head};
    int others = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < m[k]->n_layers; i++) {
            const Layer *l = &m[k]->layers[i];
            if (!l->w_n && !l->b_n && !l->buf_n) continue;
            const int backbone = !strcmp(l->name, "conv1") || !strcmp(l->name, "bn1") || !strncmp(l->name, "layer", 5);
            const Layer *c = backbone ? by_name(ck, l->name) : NULL;
            CHECK(!backbone || c, "%s: %s is not in the checkpoint model", what, l->name);
            others += !backbone;
            const size_t n[3] = {l->w_n, l->b_n, l->buf_n}, cn[3] = {c ? c->w_n : 0, c ? c->b_n : 0,
                                                                     c ? c->buf_n : 0};
            const size_t off[3] = {l->w_off, l->b_off, l->buf_off};
            const size_t coff[3] = {c ? c->w_off : 0, c ? c->b_off : 0, c ? c->buf_off : 0};
            for (int t = 0; t < 3; t++) {
                if (!n[t]) continue;
                const real *got = (t == 2 ? m[k]->buffers : m[k]->params) + off[t];
                const real *init = (t == 2 ? d->b0[k] : d->p0[k]) + off[t];
                const size_t bytes = n[t] * sizeof(real);
                if (c && cn[t] == n[t]) {
                    const real *want = (t == 2 ? ck->buffers : ck->params) + coff[t];
                    CHECK(!memcmp(got, want, bytes), "%s: %s tensor %d is not the checkpoint's", what, l->name, t);
                    CHECK(memcmp(init, want, bytes), "%s: %s tensor %d: init equals the checkpoint", what, l->name,
                          t);
                } else {
                    CHECK(!memcmp(got, init, bytes), "%s: %s tensor %d changed", what, l->name, t);
                }
            }
        }
    return others;
}

/* backbone_init on d with spec must fail, its message holding each of the
 * NULL-terminated needles, and leave d unchanged */
static void expect_error(Detector *d, Model *head, const char *spec, const char *what, const char *const *needles) {
    char msg[1200] = "";
    BackboneInitStats st;
    const int rc = backbone_init_stats(&d->base, head ? head : &d->head, spec, &st, msg, sizeof msg);
    CHECK(rc == -1, "%s: rc %d (%s)", what, rc, msg);
    for (int i = 0; needles[i]; i++)
        CHECK(strstr(msg, needles[i]) != NULL, "%s: the message lacks '%s': %s", what, needles[i], msg);
    CHECK(unchanged(d), "%s: the detector changed on error", what);
    CHECK(st.layers == 0 && st.params == 0, "%s: stats say %d layers copied", what, st.layers);
    printf("  %-22s %s\n", what, msg);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[600], spec[700];
    snprintf(dir, sizeof dir, "%s/cbnn_backbone_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "FAIL mkdtemp %s\n", dir);
        return 1;
    }
    snprintf(path, sizeof path, "%s/imagenet:r18.h5", dir); /* a ':' in the file name: the last one splits */
    char err[600];
    ResultsFile *f = results_create(path, "table2_imagenet", "", 1, err, sizeof err);
    CHECK(f != NULL, "results_create: %s", err);
    if (!f) return tu_finish("backbone_init");
    Model r20;
    memset(&r20, 0, sizeof r20);
    CHECK(add_run(f, "cyclebnn,seed=1", "imagenet_resnet18", "imagenet", CONV_BINARY, 64, 1000, &g_ckpt_bin, 11) == 0,
          "writing the cyclebnn run");
    CHECK(add_run(f, "fp32,seed=1", "imagenet_resnet18", "imagenet", CONV_FP32, 64, 1000, &g_ckpt_fp32, 12) == 0,
          "writing the fp32 run");
    CHECK(add_run(f, "resnet20", "cifar_resnet20", "cifar10", CONV_BINARY, 32, 10, &r20, 13) == 0,
          "writing the resnet20 run");
    CHECK(add_run(f, "pending", "imagenet_resnet18", "imagenet", CONV_BINARY, 64, 1000, NULL, 0) == 0,
          "declaring the pending run");
    CHECK(results_close(f, 1, err, sizeof err) == 0, "results_close: %s", err);
    model_free(&r20);

    /* 1. the binary checkpoint into the binary detector */
    Detector d;
    if (detector(&d, 64, 5)) return 1;
    char msg[1200] = "";
    BackboneInitStats st;
    snprintf(spec, sizeof spec, "%s:cyclebnn,seed=1", path);
    int rc = backbone_init_stats(&d.base, &d.head, spec, &st, msg, sizeof msg);
    CHECK(rc == 0, "backbone_init: %s", msg);
    printf("  %s\n", msg);
    CHECK(st.layers == R18_LAYERS && st.params == R18_PARAMS_FP32 + R18_ALPHA && st.buffers == R18_BUFFERS_FP32 + 32 &&
              st.kept == 0 && st.step == 7,
          "cyclebnn: %d layers, %zu params, %zu buffers, %d kept, step %ld; expected %d, %u, %u, 0, 7", st.layers,
          st.params, st.buffers, st.kept, st.step, R18_LAYERS, R18_PARAMS_FP32 + R18_ALPHA, R18_BUFFERS_FP32 + 32);
    CHECK(strstr(msg, "40 layers, 11180352 parameters and 9632 buffer values"), "the summary: %s", msg);
    /* the RPN (conv, BN, cls, box) and the head's two Linears keep their init */
    int others = check_tensors(&d, &g_ckpt_bin, "cyclebnn");
    CHECK(others == 6, "%d non-backbone layers with tensors, expected 6", others);
    model_free(&g_ckpt_bin);

    /* 2. an fp32-conv checkpoint into the binary detector, through the plain
     * entry point: the 16 binary convs' alpha and quantizer range are not in
     * it and keep their init */
    reset(&d);
    snprintf(spec, sizeof spec, "%s:fp32,seed=1", path);
    rc = backbone_init(&d.base, &d.head, spec, msg, sizeof msg);
    CHECK(rc == 0, "fp32: %s", msg);
    printf("  %s\n", msg);
    CHECK(strstr(msg, "40 layers, 11176512 parameters and 9600 buffer values; the tensors of the other conv kind "
                      "keep their init"),
          "fp32: the summary: %s", msg);
    check_tensors(&d, &g_ckpt_fp32, "fp32");
    model_free(&g_ckpt_fp32);

    /* 3. the errors, each from the init (and leaving it) */
    reset(&d);
    snprintf(spec, sizeof spec, "%s:nosuch", path);
    expect_error(&d, NULL, spec, "run not in the file", (const char *const[]){"no run 'nosuch'", path, NULL});
    snprintf(spec, sizeof spec, "%s/missing.h5:cyclebnn,seed=1", dir);
    expect_error(&d, NULL, spec, "missing file", (const char *const[]){"missing.h5", "no such file", NULL});
    snprintf(spec, sizeof spec, "%s:resnet20", path);
    expect_error(&d, NULL, spec, "another arch",
                 (const char *const[]){"cifar_resnet20", "not an imagenet_resnet18", NULL});
    snprintf(spec, sizeof spec, "%s:pending", path);
    expect_error(&d, NULL, spec, "no checkpoint", (const char *const[]){"'pending'", "no complete checkpoint", NULL});
    expect_error(&d, NULL, "results.h5", "no ':'", (const char *const[]){"expected RESULTS.h5:RUN", NULL});
    snprintf(spec, sizeof spec, "%s:", path);
    expect_error(&d, NULL, spec, "no run name", (const char *const[]){"expected RESULTS.h5:RUN", NULL});
    /* a head with a backbone layer no ResNet-18 has: checked before the base is touched */
    Model odd;
    model_init(&odd, "odd", 256, 7, 7, 21);
    model_conv(&odd, model_input(&odd), 8, 3, 1, 1, CONV_FP32, "layer3.7.conv1");
    CHECK(model_alloc(&odd, 1) == 0, "odd head: %s", odd.err);
    model_init_params(&odd, 3);
    snprintf(spec, sizeof spec, "%s:cyclebnn,seed=1", path);
    expect_error(&d, &odd, spec, "layer not in it", (const char *const[]){"layer3.7.conv1", "not in the checkpoint",
                                                                          NULL});
    model_free(&odd);
    detector_free(&d);
    /* width 16: the first backbone layer already differs */
    if (detector(&d, 16, 8)) return 1;
    expect_error(&d, NULL, spec, "width 16",
                 (const char *const[]){"layer conv1", "[64, 3, 7, 7]", "[16, 3, 7, 7]", "64 vs 16 channels", NULL});
    detector_free(&d);

    unlink(path);
    rmdir(dir);
    return tu_finish("backbone_init");
}
