/* The experiment-file parser: defaults, every key, round trips through
 * config_to_yaml, every class of error with its exact position, and a fuzz
 * loop of random mutations (run under ASan/UBSan to catch crashes and leaks). */
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "experiments/config.h"
#include "rng.h"
#include "testutil.h"

#define FILE_NAME "t.yaml"
#define RUN_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+=-"

/* a name that only run-name characters make up, not starting with '.' or '-' */
static int safe_name(const char *s) {
    return s[0] && s[0] != '.' && s[0] != '-' && strspn(s, RUN_NAME_CHARS) == strlen(s);
}

static char err[1024];

static int parse_str(ExperimentConfig *e, const char *text) {
    return experiment_parse(e, text, strlen(text), FILE_NAME, err, sizeof err);
}

/* The document must fail with a message that starts with the file name and
 * contains every fragment (NULL-terminated list). */
static void expect_error_(int line, const char *text, const char *const *frags) {
    ExperimentConfig e;
    int rc = parse_str(&e, text);
    tu_checks++;
    int ok = rc == -1 && !strncmp(err, FILE_NAME ":", strlen(FILE_NAME) + 1) && !strchr(err, '\n');
    for (const char *const *f = frags; ok && *f; f++) ok = strstr(err, *f) != NULL;
    if (!ok) {
        tu_failures++;
        fprintf(stderr, "FAIL %s:%d: rc %d, message\n  %s\nexpected to contain:", __FILE__, line, rc, err);
        for (const char *const *f = frags; *f; f++) fprintf(stderr, " [%s]", *f);
        fprintf(stderr, "\n");
    }
    if (rc == 0) experiment_free(&e);
}
#define EXPECT_ERROR(text, ...) expect_error_(__LINE__, text, (const char *const[]){__VA_ARGS__, NULL})

static int parse_ok_(int line, ExperimentConfig *e, const char *text) {
    int rc = parse_str(e, text);
    tu_checks++;
    if (rc != 0) {
        tu_failures++;
        fprintf(stderr, "FAIL %s:%d: expected success, got: %s\n", __FILE__, line, err);
    }
    return rc;
}
#define PARSE_OK(e, text) parse_ok_(__LINE__, e, text)

/* config_to_yaml, then parse it back: must give the identical struct */
static void check_round_trip_(int line, const RunConfig *c) {
    char *y = config_to_yaml(c);
    tu_checks++;
    if (!y) {
        tu_failures++;
        fprintf(stderr, "FAIL %s:%d: config_to_yaml returned NULL\n", __FILE__, line);
        return;
    }
    ExperimentConfig e;
    int rc = experiment_parse(&e, y, strlen(y), "roundtrip.yaml", err, sizeof err);
    int same = rc == 0 && !memcmp(&e.base, c, sizeof *c);
    if (!same) {
        tu_failures++;
        fprintf(stderr, "FAIL %s:%d: round trip differs (rc %d %s)\n%s\n", __FILE__, line, rc, rc ? err : "", y);
    }
    if (rc == 0) {
        /* and printing again gives the same text */
        char *y2 = config_to_yaml(&e.base);
        CHECK(y2 && !strcmp(y, y2), "config_to_yaml is not stable");
        free(y2);
        experiment_free(&e);
    }
    free(y);
}
#define CHECK_ROUND_TRIP(c) check_round_trip_(__LINE__, c)

static const char FULL_BLOCK[] =
    "name: full\n"
    "description: \"every key, none at its default\"\n"
    "base:\n"
    "  model:\n"
    "    arch: vgg_small\n"
    "    conv: cyclebnn\n"
    "  binary:\n"
    "    sign_zero: plus_one\n"
    "    pad: minus_one\n"
    "    act_grad: ste\n"
    "    act_norm: no\n"
    "    weight_center: yes\n"
    "    recu_clamp: on\n"
    "    clamp_tau: 0.9\n"
    "    grad_quant: false\n"
    "    grad_stochastic: false\n"
    "  data:\n"
    "    dataset: fashion_mnist\n"
    "    path: \"/data/fm: \\\"x\\\"\\tz\"\n"
    "    train_subset: 60_000\n"
    "    test_subset: 1000\n"
    "    normalize: no\n"
    "    augment:\n"
    "      flip: yes\n"
    "      crop_pad: 4\n"
    "  optim:\n"
    "    name: sgd\n"
    "    lr: 0.1\n"
    "    weight_decay: 5e-4\n"
    "    beta1: 0.8\n"
    "    beta2: 0.99\n"
    "    eps: 1.5e-7\n"
    "    momentum: 0.95\n"
    "    dampening: 0\n"
    "    nesterov: true\n"
    "  schedule:\n"
    "    lr: step\n"
    "    eta_min: 1e-6\n"
    "    num_cyclic_annealing: 2.5\n"
    "    step_size: 300\n"
    "    gamma: 0.5\n"
    "    warmup_iters: 10\n"
    "    cyclic_warmup: 5\n"
    "  precision:\n"
    "    schedule: cyclic\n"
    "    bits:\n"
    "      - 3\n"
    "      - 7\n"
    "    grad_bits: [4, 8]\n"
    "    cycles: 4\n"
    "    warmup_bits: 5\n"
    "    eval: fixed\n"
    "    eval_bits: 2\n"
    "  train:\n"
    "    iterations: 2000\n"
    "    epochs: 3.5\n"
    "    batch_size: 128\n"
    "    eval_batch_size: 512\n"
    "    eval_interval: 100\n"
    "    log_interval: 10\n"
    "    seed: 18446744073709551615\n"
    "    threads: 4\n";

/* the same configuration in flow style, with dotted keys mixed in */
static const char FULL_FLOW[] =
    "{name: full, description: 'every key, none at its default', base: {"
    "model: {arch: vgg_small, conv: cyclebnn}, "
    "binary: {sign_zero: plus_one, pad: minus_one, act_grad: ste, act_norm: false, weight_center: true, "
    "recu_clamp: true, clamp_tau: 9e-1, grad_quant: no}, binary.grad_stochastic: off, "
    "precision: {schedule: cyclic, bits: [+3, 7], grad_bits: [4, 8], cycles: 4}, "
    "precision.warmup_bits: 5, precision.eval: fixed, precision.eval_bits: 2, "
    "data: {dataset: fashion_mnist, path: '/data/fm: \"x\"\tz', train_subset: 60000, test_subset: 1_000, "
    "normalize: false, augment.flip: on, augment: {crop_pad: 4}}, "
    "optim: {name: sgd, lr: 1e-1, weight_decay: 0.0005, beta1: .8, beta2: 0.99, eps: 15e-8, momentum: 0.95, "
    "dampening: 0.0, nesterov: True}, "
    "schedule.lr: step, schedule: {eta_min: 0.000001, num_cyclic_annealing: 2.50, step_size: 300, gamma: 0.5, "
    "warmup_iters: 10, cyclic_warmup: 5}, "
    "train: {iterations: 2000, epochs: 3.5, batch_size: 128, eval_batch_size: 512, eval_interval: 100, "
    "log_interval: 10, seed: 18446744073709551615, threads: 4}}}\n";

static void check_full(const RunConfig *c) {
    CHECK(!strcmp(c->arch, "vgg_small"), "arch %s", c->arch);
    CHECK(c->conv == CONV_BINARY, "conv");
    CHECK(c->sign_zero == SIGN_ZERO_IS_PLUS_ONE && c->bin_pad == BIN_PAD_MINUS_ONE && c->act_grad == ACT_GRAD_STE &&
              c->bin_backward == BIN_BACKWARD_INT8,
          "binary enums");
    CHECK(c->act_norm == 0 && c->weight_center == 1 && c->recu_clamp == 1 && c->clamp_tau == 0.9 &&
              c->grad_quant == 0 && c->grad_stochastic == 0,
          "binary flags");
    CHECK(c->prec_schedule == PREC_CYCLIC && c->bits.min == 3 && c->bits.max == 7 && c->grad_bits.min == 4 &&
              c->grad_bits.max == 8,
          "precision bits [%d, %d] [%d, %d]", c->bits.min, c->bits.max, c->grad_bits.min, c->grad_bits.max);
    CHECK(c->prec_cycles == 4 && c->warmup_bits == 5 && c->prec_eval == PREC_EVAL_FIXED && c->eval_bits == 2,
          "precision numbers");
    CHECK(!strcmp(c->dataset, "fashion_mnist"), "dataset");
    CHECK(!strcmp(c->data_path, "/data/fm: \"x\"\tz"), "path [%s]", c->data_path);
    CHECK(c->train_subset == 60000 && c->test_subset == 1000, "subsets");
    CHECK(c->normalize == 0 && c->aug_flip == 1 && c->aug_crop_pad == 4, "data flags");
    CHECK(c->optimizer == OPTIM_SGD, "optimizer");
    CHECK(c->lr == 0.1 && c->weight_decay == 5e-4 && c->beta1 == 0.8 && c->beta2 == 0.99 && c->eps == 1.5e-7,
          "adam numbers");
    CHECK(c->momentum == 0.95 && c->dampening == 0 && c->nesterov == 1, "sgd numbers");
    CHECK(c->lr_schedule == LR_STEP, "schedule");
    CHECK(c->eta_min == 1e-6 && c->num_cyclic_annealing == 2.5 && c->step_size == 300 && c->gamma == 0.5 &&
              c->warmup_iters == 10 && c->cyclic_warmup == 5,
          "schedule numbers");
    CHECK(c->iterations == 2000 && c->epochs == 3.5 && c->batch_size == 128 && c->eval_batch_size == 512 &&
              c->eval_interval == 100 && c->log_interval == 10 && c->threads == 4,
          "train numbers");
    CHECK(c->seed == UINT64_MAX, "seed");
}

static void test_defaults(void) {
    RunConfig d;
    config_defaults(&d);
    CHECK(!strcmp(d.arch, "cifar_resnet20") && d.conv == CONV_FP32 && !strcmp(d.dataset, "fashion_mnist"),
          "model/data defaults");
    CHECK(d.data_path[0] == 0 && d.train_subset == 0 && d.test_subset == 0, "data defaults");
    CHECK(d.normalize == 1 && d.aug_flip == 0 && d.aug_crop_pad == 0, "augment defaults");
    CHECK(d.optimizer == OPTIM_ADAMW && d.lr == 1e-3 && d.weight_decay == 1e-5, "optim defaults");
    CHECK(d.beta1 == 0.9 && d.beta2 == 0.999 && d.eps == 1e-8, "adam defaults");
    CHECK(d.momentum == 0.9 && d.dampening == 0 && d.nesterov == 0, "sgd defaults");
    CHECK(d.lr_schedule == LR_COSINE && d.eta_min == 0 && d.num_cyclic_annealing == 1 && d.step_size == 0 &&
              d.gamma == 0.1 && d.warmup_iters == 0 && d.cyclic_warmup == 0,
          "schedule defaults");
    CHECK(d.sign_zero == SIGN_ZERO_IS_ZERO && d.bin_pad == BIN_PAD_ZERO && d.act_grad == ACT_GRAD_APPROX_SIGN &&
              d.bin_backward == BIN_BACKWARD_INT8 && d.act_norm == 1 && d.weight_center == 0 && d.recu_clamp == 0 &&
              d.clamp_tau == 0.99 &&
              d.grad_quant == 1 && d.grad_stochastic == 1,
          "binary defaults (the authors' code)");
    CHECK(d.prec_schedule == PREC_FULL && d.bits.min == 2 && d.bits.max == 6 && d.grad_bits.min == 8 &&
              d.grad_bits.max == 8 && d.prec_cycles == 8 && d.warmup_bits == 0 && d.prec_eval == PREC_EVAL_FAITHFUL &&
              d.eval_bits == 0,
          "precision defaults");
    CHECK(d.val_split == -1 && d.split_seed == 0, "validation defaults (the dataset's split, split seed 0)");
    CHECK(d.iterations == 0 && d.epochs == 1 && d.batch_size == 16 && d.eval_batch_size == 256 &&
              d.eval_interval == 0 && d.log_interval == 50 && d.seed == 1 && d.threads == 0,
          "train defaults");

    /* an empty base, a null base and no base at all all mean the defaults */
    const char *docs[] = {"base: {}\n", "base:\n", "name: x\n", "base: ~\n", "base:\n  optim:\n  data: null\n"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        ExperimentConfig e;
        if (PARSE_OK(&e, docs[i])) continue;
        CHECK(!memcmp(&e.base, &d, sizeof d), "defaults differ for [%s]", docs[i]);
        CHECK(!strcmp(e.path, FILE_NAME), "path");
        CHECK(e.yaml_text && !strcmp(e.yaml_text, docs[i]), "yaml_text kept verbatim");
        experiment_free(&e);
    }
    ExperimentConfig e;
    if (!PARSE_OK(&e, "base: {}\n")) {
        CHECK(!strcmp(e.name, "t"), "name from the file name: %s", e.name);
        CHECK(e.description[0] == 0, "description default");
        experiment_free(&e);
    }
    if (!experiment_parse(&e, "base: {}", 8, "dir/sub/my_exp.yml", err, sizeof err)) {
        CHECK(!strcmp(e.name, "my_exp"), "name from .yml file: %s", e.name);
        experiment_free(&e);
    }
    CHECK_ROUND_TRIP(&d);
}

static void test_full(void) {
    ExperimentConfig a, b;
    if (PARSE_OK(&a, FULL_BLOCK)) return;
    check_full(&a.base);
    CHECK(!strcmp(a.name, "full"), "name %s", a.name);
    CHECK(!strcmp(a.description, "every key, none at its default"), "description");
    CHECK_ROUND_TRIP(&a.base);
    if (!PARSE_OK(&b, FULL_FLOW)) {
        check_full(&b.base);
        CHECK(!memcmp(&a.base, &b.base, sizeof a.base), "flow and block style differ");
        experiment_free(&b);
    }
    /* the YAML printed for the results file is itself an experiment file */
    char *y = config_to_yaml(&a.base);
    CHECK(y && !strncmp(y, "base:\n  model:\n    arch: vgg_small\n", 35), "to_yaml layout:\n%s", y ? y : "");
    CHECK(y && strstr(y, "\n    lr: 0.1\n") && strstr(y, "\n    augment:\n      flip: true\n"),
          "to_yaml values:\n%s", y ? y : "");
    CHECK(y && strstr(y, "\n  precision:\n    schedule: cyclic\n    bits: [3, 7]\n    grad_bits: [4, 8]\n"),
          "to_yaml bit ranges:\n%s", y ? y : "");
    free(y);
    experiment_free(&a);

    /* the other spellings of the scalars */
    if (!PARSE_OK(&a, "base:\n  data: {normalize: OFF, augment: {flip: Yes}}\n  optim.lr: +2.5E-3\n"
                      "  train: {iterations: +1_000_000, epochs: 0, seed: 0}\n"
                      "  schedule: {eta_min: -0.0}\n")) {
        CHECK(a.base.normalize == 0 && a.base.aug_flip == 1, "bool spellings");
        CHECK(a.base.lr == 2.5e-3 && a.base.iterations == 1000000 && a.base.epochs == 0 && a.base.seed == 0,
              "number spellings");
        CHECK(a.base.eta_min == 0 && signbit(a.base.eta_min), "-0.0 kept");
        CHECK_ROUND_TRIP(&a.base);
        experiment_free(&a);
    }
    /* tags are ignored, comments and document markers allowed, quoted strings for strings */
    if (!PARSE_OK(&a, "%YAML 1.1\n---\n# comment\nname: 'q'   # trailing\nbase: !!map\n  model: {arch: \"cifar_resnet8\"}\n"
                      "  data: {path: }\n...\n")) {
        CHECK(!strcmp(a.name, "q") && !strcmp(a.base.arch, "cifar_resnet8") && a.base.data_path[0] == 0,
              "quoted/tagged/null");
        experiment_free(&a);
    }
}

/* bit widths: one integer or a list, in every spelling */
static void test_bits(void) {
    ExperimentConfig e;
    if (!PARSE_OK(&e, "base:\n  precision:\n    schedule: fixed\n    bits: 4\n    grad_bits: [8, 8]\n")) {
        CHECK(e.base.bits.min == 4 && e.base.bits.max == 4 && e.base.grad_bits.min == 8 && e.base.grad_bits.max == 8,
              "fixed bits");
        char *y = config_to_yaml(&e.base);
        /* a one-width range is written as one integer */
        CHECK(y && strstr(y, "\n    bits: 4\n    grad_bits: 8\n"), "to_yaml:\n%s", y ? y : "");
        free(y);
        CHECK_ROUND_TRIP(&e.base);
        experiment_free(&e);
    }
    if (!PARSE_OK(&e, "base:\n  precision:\n    schedule: cyclic\n    bits:\n    - 1\n    - 32\n"
                      "    grad_bits: [ 3 , +0_5 ]\n")) {
        CHECK(e.base.bits.min == 1 && e.base.bits.max == 32 && e.base.grad_bits.min == 3 && e.base.grad_bits.max == 5,
              "block list, spaces, signs, underscores");
        CHECK_ROUND_TRIP(&e.base);
        experiment_free(&e);
    }
    /* a cyclic schedule with one width is a constant cycle; a list of equal widths is allowed anywhere */
    if (!PARSE_OK(&e, "base: {precision: {schedule: cyclic, bits: 5, grad_bits: [6, 6]}}\n")) {
        CHECK(e.base.bits.min == 5 && e.base.bits.max == 5 && e.base.grad_bits.min == 6, "cyclic scalar");
        experiment_free(&e);
    }
    /* the README's CIFAR run: 187,500 iterations in 8 cycles */
    if (!PARSE_OK(&e, "base: {train: {iterations: 187500}, model.conv: cyclebnn,\n"
                      "       precision: {schedule: cyclic, bits: [2, 6], grad_bits: 8, cycles: 8}}\n")) {
        CHECK(e.base.conv == CONV_BINARY && e.base.prec_cycles == 8, "README config");
        experiment_free(&e);
    }
    /* the cycle may be exactly one iteration */
    if (!PARSE_OK(&e, "base: {train: {iterations: 100}, precision: {schedule: cyclic, cycles: 100}}\n"))
        experiment_free(&e);
    /* the checks on cycles apply only to the cyclic schedule */
    if (!PARSE_OK(&e, "base: {train: {iterations: 100}, precision: {schedule: full, cycles: 1000}}\n"))
        experiment_free(&e);

    /* the wrong length, min > max, values outside 1..32: file:line:col of the list or the element */
    EXPECT_ERROR("base:\n  precision:\n    bits: [2, 4, 6]\n",
                 FILE_NAME ":3:11: key 'precision.bits' expects a list of two bit widths [min, max], got 3 elements");
    EXPECT_ERROR("base:\n  precision:\n    bits: [4]\n", ":3:11:", "two bit widths [min, max], got 1 element");
    /* train.shards (core/shard.h): a power of two dividing the batch */
    EXPECT_ERROR("base:\n  train:\n    batch_size: 12\n    shards: 8\n", ":4:5:",
                 "key 'train.shards' must be a power of two dividing train.batch_size (12), got 8");
    EXPECT_ERROR("base:\n  train:\n    batch_size: 16\n    shards: 6\n", "got 6");
    EXPECT_ERROR("base:\n  train:\n    shards: 0\n", "train.shards");
    EXPECT_ERROR("base:\n  precision:\n    bits: []\n", ":3:11:", "got 0 elements");
    EXPECT_ERROR("base:\n  precision:\n    grad_bits:\n      - 8\n", ":4:7:",
                 "'precision.grad_bits' expects a list of two bit widths [min, max], got 1 element");
    EXPECT_ERROR("base:\n  precision:\n    bits: [6, 2]\n",
                 FILE_NAME ":3:11: key 'precision.bits' expects [min, max] with min <= max, got [6, 2]");
    EXPECT_ERROR("base:\n  precision:\n    bits: [2, 33]\n",
                 FILE_NAME ":3:15: key 'precision.bits' must be in [1, 32], got 33");
    EXPECT_ERROR("base:\n  precision:\n    bits: [0, 6]\n", ":3:12:", "'precision.bits' must be in [1, 32], got 0");
    EXPECT_ERROR("base:\n  precision:\n    bits: [-2, 6]\n", ":3:12:", "must be in [1, 32], got -2");
    EXPECT_ERROR("base:\n  precision:\n    bits: [2, 99999999999]\n", ":3:15:", "must be in [1, 32], got 99999999999");
    EXPECT_ERROR("base:\n  precision:\n    bits:\n      - 2\n      - 40\n", ":5:9:", "must be in [1, 32], got 40");
    EXPECT_ERROR("base: {precision: {grad_bits: 0}}\n", ":1:31:", "'precision.grad_bits' must be in [1, 32], got 0");
    EXPECT_ERROR("base: {precision: {bits: 33}}\n", ":1:26:", "'precision.bits' must be in [1, 32], got 33");
    /* wrong types, in and around the list */
    EXPECT_ERROR("base: {precision: {bits: 2.5}}\n", ":1:26:",
                 "key 'precision.bits' expects a bit width or a list [min, max], got '2.5'");
    EXPECT_ERROR("base: {precision: {bits: \"4\"}}\n", ":1:26:", "expects a bit width or a list [min, max], got the quoted string");
    EXPECT_ERROR("base: {precision: {bits: }}\n", ":1:26:", "expects a bit width or a list [min, max], got an empty value");
    EXPECT_ERROR("base: {precision: {bits: {min: 2}}}\n", ":1:26:",
                 "key 'precision.bits' expects a bit width or a list [min, max], got a mapping");
    EXPECT_ERROR("base: {precision: {bits: [2, x]}}\n", ":1:30:", "key 'precision.bits' expects an integer, got 'x'");
    EXPECT_ERROR("base: {precision: {bits: [2, 6.0]}}\n", ":1:30:", "expects an integer, got '6.0'");
    EXPECT_ERROR("base: {precision: {bits: [2, \"6\"]}}\n", ":1:30:", "expects an integer, got the quoted string \"6\"");
    EXPECT_ERROR("base: {precision: {bits: [2, ~]}}\n", ":1:30:", "expects an integer, got an empty value");
    EXPECT_ERROR("base: {precision: {bits: [2, [6]]}}\n", ":1:30:",
                 "key 'precision.bits' expects a list of bit widths [min, max], got a sequence in the list");
    EXPECT_ERROR("base: {precision: {bits: [{a: 1}, 6]}}\n", ":1:27:", "got a mapping in the list");
    EXPECT_ERROR("base: {precision: {bits: [&a 2, *a]}}\n", ":1:33:", "aliases are not supported (*a)");
    EXPECT_ERROR("base: {precision: {bits: *a}}\n", ":1:26:", "aliases are not supported (*a)");
    EXPECT_ERROR("base: {precision: {bits: [2, 6], bits: 4}}\n", ":1:34:", "duplicate key 'precision.bits'");
    EXPECT_ERROR("base: {precision: {bits: [2, 6]}, precision.bits: 4}\n", ":1:35:", "duplicate key 'precision.bits'");
    EXPECT_ERROR("base: {precision: {bits: [2, 6}}\n", "YAML syntax error");
    /* constraints with the schedule */
    EXPECT_ERROR("base:\n  precision:\n    schedule: fixed\n",
                 FILE_NAME ":3:5: key 'precision.bits' must be one bit width when precision.schedule is 'fixed', "
                 "got [2, 6]");
    EXPECT_ERROR("base:\n  precision:\n    schedule: fixed\n    bits: 1\n    grad_bits: [4, 8]\n", ":5:5:",
                 "'precision.grad_bits' must be one bit width when precision.schedule is 'fixed', got [4, 8]");
    EXPECT_ERROR("base: {train: {iterations: 100}, precision: {schedule: cyclic, cycles: 101}}\n", ":1:64:",
                 "key 'precision.cycles' needs at least one iteration per cycle", "(100 - 4 * 0) / 101 < 1");
    EXPECT_ERROR("base: {train: {iterations: 100}, precision: {schedule: cyclic}, schedule: {lr: constant, "
                 "cyclic_warmup: 25}}\n", ":1:16:", "'precision.cycles' needs at least one iteration per cycle",
                 "(100 - 4 * 25) / 8 < 1");
    EXPECT_ERROR("base: {train: {iterations: 10}, precision: {schedule: cyclic}, schedule: {lr: constant, "
                 "cyclic_warmup: 274877906944}}\n", ":1:16:", "'precision.cycles' needs at least one iteration");
    /* the other precision keys */
    EXPECT_ERROR("base: {precision: {schedule: cyclical}}\n", ":1:30:",
                 "'precision.schedule' must be one of cyclic, fixed, full; got 'cyclical' (did you mean 'cyclic'?)");
    EXPECT_ERROR("base: {precision: {cycles: 0}}\n", ":1:28:", "'precision.cycles' must be >= 1, got 0");
    EXPECT_ERROR("base: {precision: {warmup_bits: 33}}\n", ":1:33:", "'precision.warmup_bits' must be in [0, 32], got 33");
    EXPECT_ERROR("base: {precision: {eval: last}}\n", ":1:26:", "'precision.eval' must be one of faithful, fixed");
    EXPECT_ERROR("base: {precision: {eval_bits: 33}}\n", ":1:31:", "'precision.eval_bits' must be in [0, 32], got 33");
    /* issue 16: the validation split and the statistics' keys */
    EXPECT_ERROR("base: {data: {val_split: 2.5}}\n", ":1:", "'data.val_split' must be a whole number of images, a fraction in (0, 1), 0 or -1, got 2.5");
    EXPECT_ERROR("base: {data: {val_split: -0.5}}\n", ":1:", "'data.val_split' must be a whole number");
    EXPECT_ERROR("base: {data: {val_split: -2}}\n", ":1:26:", "'data.val_split' must be in [-1, 1000000000], got -2");
    EXPECT_ERROR("base: {model: {arch: frcnn_resnet18}, data: {dataset: synth_voc, val_split: 100}}\n", ":1:",
                 "'data.val_split' must be 0 or -1 for the detection dataset 'synth_voc'");
    EXPECT_ERROR("base: {}\ngrid: {precision.cycles: [1, 8]}\nseeds: [1, 2]\ncompare_to: cycles=3\n", ":4:13:",
                 "key 'compare_to' names no configuration of this file: 'cycles=3'", "'cycles=1'");
    EXPECT_ERROR("base: {}\ngrid: {precision.cycles: [1, 8]}\ncompare_to: cycles=8,seed=1\n", ":3:13:",
                 "names no configuration");
    EXPECT_ERROR("base: {}\ntarget_top1: 101\n", ":2:14:", "key 'target_top1' must be a validation top-1 in percent, in (0, 100], got '101'");
    EXPECT_ERROR("base: {}\ntarget_top1: x\n", ":2:14:", "in (0, 100], got 'x'");
    EXPECT_ERROR("base: {}\ncompare_to: a\ncompare_to: b\n", ":3:1:", "duplicate key 'compare_to'");
    {
        ExperimentConfig e;
        char err[512];
        const char *y = "base: {}\ngrid: {precision.cycles: [1, 8]}\nseeds: [1, 2, 3]\ncompare_to: cycles=8\ntarget_top1: 75.5\n";
        int rc = experiment_parse(&e, y, strlen(y), "t.yaml", err, sizeof err);
        CHECK(rc == 0 && !strcmp(e.compare_to, "cycles=8") && e.target_top1 == 75.5 && e.n_runs == 6,
              "compare_to and target_top1 parse (%s)", rc ? err : "");
        if (!rc) experiment_free(&e);
        RunConfig c;
        config_defaults(&c);
        CHECK(config_val_split(&c, 60000) == 5000, "fashion_mnist holds out 5000 by default");
        c.val_split = 0.1;
        CHECK(config_val_split(&c, 50000) == 5000, "a fraction of the training file");
        c.val_split = 0;
        CHECK(config_val_split(&c, 50000) == 0, "0: none");
        snprintf(c.dataset, sizeof c.dataset, "imagenet");
        c.val_split = -1;
        CHECK(config_val_split(&c, 1281167) == 10000, "ImageNet's 10,000");
        c.prec_schedule = PREC_CYCLIC;
        CHECK(config_eval_bits(&c) == 6, "eval_bits 0 = the top of the range");
        c.eval_bits = 4;
        CHECK(config_eval_bits(&c) == 4, "eval_bits given");
        c.prec_schedule = PREC_FULL;
        CHECK(config_eval_bits(&c) == 32, "full precision evaluates at 32");
    }
    EXPECT_ERROR("base: {precision: {bit: 4}}\n", ":1:20:", "unknown key 'precision.bit' (did you mean 'precision.bits'?)");
    EXPECT_ERROR("base: {bits: 4}\n", ":1:8:", "unknown key 'bits'", "'precision.bits'");
    EXPECT_ERROR("base: {precision: {xyzzy: 1}}\n", ":1:20:",
                 "allowed under 'base.precision': schedule, bits, grad_bits, cycles, warmup_bits, eval, eval_bits");
    /* binary conv options */
    EXPECT_ERROR("base: {model: {conv: binary}}\n", ":1:22:", "'model.conv' must be one of fp32, cyclebnn; got 'binary'");
    EXPECT_ERROR("base: {binary: {act_grad: aprox_sign}}\n", ":1:27:",
                 "'binary.act_grad' must be one of approx_sign, ste; got 'aprox_sign' (did you mean 'approx_sign'?)");
    EXPECT_ERROR("base: {binary: {sign_zero: one}}\n", ":1:28:", "'binary.sign_zero' must be one of zero, plus_one");
    EXPECT_ERROR("base: {binary: {pad: -1}}\n", ":1:22:", "'binary.pad' must be one of zero, minus_one; got '-1'");
    EXPECT_ERROR("base: {binary: {clamp_tau: 0.5}}\n", ":1:28:", "'binary.clamp_tau' must be in (0.5, 1], got 0.5");
    EXPECT_ERROR("base: {binary: {clamp_tau: 1.01}}\n", ":1:28:", "must be in (0.5, 1], got 1.01");
    EXPECT_ERROR("base: {binary: {act_norm: 1}}\n", ":1:27:", "'binary.act_norm' expects true or false");
    EXPECT_ERROR("base: {binary: {grad_quant: [true]}}\n", ":1:29:", "'binary.grad_quant' expects true or false, got a sequence");
}

/* random valid configurations survive config_to_yaml -> parse bit for bit */
static void test_random_round_trips(void) {
    static const char *archs[] = {"cifar_resnet18", "cifar_resnet20", "cifar_resnet8", "imagenet_resnet18", "vgg_small"};
    static const LRKind scheds[] = {LR_COSINE, LR_STEP, LR_CONSTANT};
    static const char pathchars[] = "abcXYZ019 _-./:#\"'\\\t\n{}[]&*!|>%@`,?~";
    for (int t = 0; t < 300; t++) {
        Rng r = rng_stream(7, RNG_TEST, 1, (uint64_t)t);
        RunConfig c;
        config_defaults(&c);
        memset(c.arch, 0, sizeof c.arch);
        strcpy(c.arch, archs[rng_below(&r, 5)]);
        c.lr_schedule = scheds[rng_below(&r, 3)];
        c.optimizer = rng_below(&r, 2) ? OPTIM_SGD : OPTIM_ADAMW;
        size_t plen = (size_t)rng_below(&r, 40);
        for (size_t i = 0; i < plen; i++) c.data_path[i] = pathchars[rng_below(&r, sizeof pathchars - 1)];
        /* strings are compared with memcmp: clear the whole field first */
        if (t % 7 == 0 || t % 11 == 0 || t % 13 == 0) memset(c.data_path, 0, sizeof c.data_path);
        if (t % 7 == 0) strcpy(c.data_path, "caf\xc3\xa9/\xe2\x82\xac"); /* UTF-8 passes through */
        else if (t % 11 == 0) strcpy(c.data_path, "null");                  /* must come back quoted */
        else if (t % 13 == 0) strcpy(c.data_path, "true");
        c.train_subset = (long)rng_below(&r, 100000);
        c.normalize = (int)rng_below(&r, 2);
        c.aug_flip = (int)rng_below(&r, 2);
        c.aug_crop_pad = (int)rng_below(&r, 65);
        c.lr = exp(-20 + 22 * rng_uniform(&r));
        c.weight_decay = t % 5 ? rng_uniform(&r) * 1e-2 : 1.7976931348623157e308;
        c.beta1 = rng_uniform(&r);
        c.beta2 = rng_uniform(&r);
        c.eps = t % 3 ? 1e-10 * rng_uniform(&r) + 1e-300 : 4.9406564584124654e-324;
        c.momentum = rng_uniform(&r);
        c.dampening = rng_below(&r, 2) ? 0 : rng_uniform(&r);
        c.nesterov = (int)rng_below(&r, 2);
        if (c.nesterov) c.dampening = 0, c.momentum = 0.5 + 0.4 * rng_uniform(&r);
        c.eta_min = t % 4 ? rng_uniform(&r) * c.lr : 5e-324;
        c.num_cyclic_annealing = 0.1 + 10 * rng_uniform(&r);
        c.step_size = 1 + (long)rng_below(&r, 1000);
        c.gamma = 1 - rng_uniform(&r) * 0.999;
        c.warmup_iters = (long)rng_below(&r, 100);
        c.iterations = (long)rng_below(&r, 2) ? 0 : 4 + (long)rng_below(&r, 1L << 40);
        c.cyclic_warmup = c.iterations ? (long)rng_below(&r, (uint64_t)(c.iterations / 4)) : (long)rng_below(&r, 9);
        c.epochs = 1e-3 + 100 * rng_uniform(&r);
        c.batch_size = 1 + (int)rng_below(&r, 65536);
        c.eval_batch_size = 1 + (int)rng_below(&r, 65536);
        c.eval_interval = (long)rng_below(&r, 10000);
        c.log_interval = 1 + (long)rng_below(&r, 10000);
        c.seed = rng_u64(&r);
        c.threads = (int)rng_below(&r, 1025);
        static const PrecKind precs[] = {PREC_CYCLIC, PREC_FIXED, PREC_FULL};
        c.prec_schedule = precs[rng_below(&r, 3)];
        BitRange *br[2] = {&c.bits, &c.grad_bits};
        for (int j = 0; j < 2; j++) {
            int a = 1 + (int)rng_below(&r, 32), b = 1 + (int)rng_below(&r, 32);
            if (a > b) { int x = a; a = b; b = x; }
            if (c.prec_schedule == PREC_FIXED || rng_below(&r, 4) == 0) b = a;
            br[j]->min = a;
            br[j]->max = b;
        }
        /* with a known total, at least one iteration per cycle (4W <= I - 4 here) */
        long span = c.iterations ? c.iterations - 4 * c.cyclic_warmup : 0;
        c.prec_cycles = span ? 1 + (int)rng_below(&r, (uint64_t)(span < 100000 ? span : 100000))
                             : 1 + (int)rng_below(&r, 2147483647);
        c.warmup_bits = (int)rng_below(&r, 33);
        c.prec_eval = rng_below(&r, 2) ? PREC_EVAL_FIXED : PREC_EVAL_FAITHFUL;
        c.eval_bits = 1 + (int)rng_below(&r, 32);
        c.conv = rng_below(&r, 2) ? CONV_BINARY : CONV_FP32;
        c.sign_zero = rng_below(&r, 2) ? SIGN_ZERO_IS_ZERO : SIGN_ZERO_IS_PLUS_ONE;
        c.bin_pad = rng_below(&r, 2) ? BIN_PAD_ZERO : BIN_PAD_MINUS_ONE;
        c.act_grad = rng_below(&r, 2) ? ACT_GRAD_APPROX_SIGN : ACT_GRAD_STE;
        c.act_norm = (int)rng_below(&r, 2);
        c.weight_center = (int)rng_below(&r, 2);
        c.recu_clamp = (int)rng_below(&r, 2);
        c.clamp_tau = t % 9 ? 0.5 + 0.5 * (1 - rng_uniform(&r)) : 1.0;
        if (!(c.clamp_tau > 0.5)) c.clamp_tau = 1.0;
        c.grad_quant = (int)rng_below(&r, 2);
        c.grad_stochastic = (int)rng_below(&r, 2);
        c.checkpoint_interval = (long)rng_below(&r, 100000);
        c.bin_backward = t & 1 ? BIN_BACKWARD_FP32 : BIN_BACKWARD_INT8; /* no draw: the stream stays as it was */
        CHECK_ROUND_TRIP(&c);
    }
}

static void test_errors(void) {
    /* unknown keys: a near miss, the right name at the wrong level, nothing close */
    EXPECT_ERROR("base:\n  optim:\n    lrr: 0.01\n", FILE_NAME ":3:5: unknown key 'optim.lrr' (did you mean 'optim.lr'?)");
    EXPECT_ERROR("base:\n  optm: {lr: 1}\n", ":2:3:", "'optm'", "did you mean 'optim'?");
    EXPECT_ERROR("base:\n  model: {arch: vgg_small, archh: vgg_small}\n", ":2:28:", "'model.archh'",
                 "did you mean 'model.arch'?");
    EXPECT_ERROR("base:\n  lr: 0.1\n", ":2:3:", "unknown key 'lr'", "did you mean 'optim.lr' or 'schedule.lr'?");
    EXPECT_ERROR("base: {optim: {batch_size: 1}}\n", ":1:16:", "'optim.batch_size'", "did you mean 'train.batch_size'?");
    EXPECT_ERROR("base: {optim: {xyzzy: 1}}\n",
                 ":1:16: unknown key 'optim.xyzzy' (allowed under 'base.optim': name, lr, weight_decay, beta1, beta2, "
                 "eps, momentum, dampening, nesterov)");
    EXPECT_ERROR("base:\n  data:\n    augment: {flop: true}\n", ":3:15:", "'data.augment.flop'", "'data.augment.flip'");
    EXPECT_ERROR("base:\n  zzzzzzzz: 1\n", ":2:3:",
                 "allowed under 'base': model, binary, data, optim, schedule, precision, train, detect)");
    EXPECT_ERROR("bse:\n  optim: {}\n", ":1:1: unknown key 'bse' (did you mean 'base'?)");
    EXPECT_ERROR("name: x\noptim:\n  lr: 1\n", ":2:1:", "'optim'", "under 'base:'");
    EXPECT_ERROR("name: x\nfoo: 1\n", ":2:1:", "'foo'", "name, description, base");
    EXPECT_ERROR("name: x\ngrid:\n  a: 1\n", ":3:3: grid axis 'a' names no key (axes are dotted paths");
    EXPECT_ERROR("seeds: [1, 2]\nseed: 3\n", ":2:1: unknown key 'seed' (did you mean 'seeds'?)");
    EXPECT_ERROR("name: x\nfoo: 1\n", ":2:1:", "allowed at the top level: name, description, base, grid, seeds, runs");
    EXPECT_ERROR("base: {optim..lr: 1}\n", ":1:8:", "unknown key 'optim..lr'");
    EXPECT_ERROR("base: {\"a\\nb\": 1}\n", ":1:8:", "unknown key 'a\\nb'");

    /* wrong types; positions point at the value */
    EXPECT_ERROR("base:\n  train:\n    batch_size: abc\n",
                 FILE_NAME ":3:17: key 'train.batch_size' expects an integer, got 'abc'");
    EXPECT_ERROR("base: {train: {batch_size: 12abc}}\n", ":1:28:", "expects an integer, got '12abc'");
    EXPECT_ERROR("base: {train: {batch_size: 1.0}}\n", ":1:28:", "expects an integer, got '1.0'");
    EXPECT_ERROR("base: {train: {log_interval: 1__0}}\n", ":1:30:", "expects an integer, got '1__0'");
    EXPECT_ERROR("base: {train: {log_interval: _1}}\n", ":1:30:", "expects an integer, got '_1'");
    EXPECT_ERROR("base: {train: {log_interval: 1_}}\n", ":1:30:", "expects an integer, got '1_'");
    EXPECT_ERROR("base: {train: {log_interval: 0x10}}\n", ":1:30:", "expects an integer, got '0x10'");
    EXPECT_ERROR("base:\n  optim:\n    lr: abc\n", ":3:9:", "key 'optim.lr' expects a number, got 'abc'");
    EXPECT_ERROR("base:\n  optim:\n    lr: 1e-3x\n", ":3:9:", "expects a number, got '1e-3x'");
    EXPECT_ERROR("base:\n  optim:\n    lr: 1e\n", ":3:9:", "expects a number, got '1e'");
    EXPECT_ERROR("base:\n  optim:\n    lr: 0x1p-3\n", ":3:9:", "expects a number, got '0x1p-3'");
    EXPECT_ERROR("base:\n  optim:\n    lr: .inf\n", ":3:9:", "'optim.lr' expects a finite number, got '.inf'");
    EXPECT_ERROR("base:\n  optim:\n    lr: .NaN\n", ":3:9:", "expects a finite number, got '.NaN'");
    EXPECT_ERROR("base:\n  optim:\n    lr: nan\n", ":3:9:", "expects a finite number, got 'nan'");
    EXPECT_ERROR("base:\n  optim:\n    lr: 1e999\n", ":3:9:", "expects a finite number, got '1e999' (overflow)");
    EXPECT_ERROR("base:\n  optim:\n    lr: \"0.01\"\n", ":3:9:", "expects a number, got the quoted string \"0.01\"");
    EXPECT_ERROR("base:\n  optim:\n    lr:\n", ":3:8:", "key 'optim.lr' expects a number, got an empty value");
    EXPECT_ERROR("base:\n  optim:\n    lr: ~\n", ":3:9:", "got an empty value");
    EXPECT_ERROR("base: {data: {normalize: maybe}}\n", ":1:26:", "key 'data.normalize' expects true or false",
                 "got 'maybe'");
    EXPECT_ERROR("base: {data: {normalize: 1}}\n", ":1:26:", "expects true or false");
    EXPECT_ERROR("base: {train: {seed: -1}}\n", ":1:22:", "'train.seed' expects a non-negative integer, got '-1'");

    /* out of range and overflow */
    EXPECT_ERROR("base:\n  train:\n    batch_size: 0\n",
                 FILE_NAME ":3:17: key 'train.batch_size' must be in [1, 65536], got 0");
    EXPECT_ERROR("base: {train: {batch_size: 3000000000}}\n", ":1:28:", "must be in [1, 65536], got 3000000000");
    EXPECT_ERROR("base: {data: {train_subset: 99999999999999999999}}\n", ":1:29:",
                 "'data.train_subset' must be in [0, 9223372036854775807], got 99999999999999999999");
    EXPECT_ERROR("base: {train: {iterations: 99999999999999999999}}\n", ":1:28:",
                 "'train.iterations' must be in [0, 1099511627776], got 99999999999999999999");
    EXPECT_ERROR("base: {train: {iterations: -5}}\n", ":1:28:", "'train.iterations' must be in [0, 1099511627776], got -5");
    EXPECT_ERROR("base: {train: {seed: 18446744073709551616}}\n", ":1:22:",
                 "must be in [0, 18446744073709551615], got 18446744073709551616");
    EXPECT_ERROR("base: {train: {threads: 1025}}\n", ":1:25:", "'train.threads' must be in [0, 1024], got 1025");
    EXPECT_ERROR("base: {optim: {lr: 0}}\n", ":1:20:", "key 'optim.lr' must be > 0, got 0");
    EXPECT_ERROR("base: {optim: {lr: -1e-3}}\n", ":1:20:", "must be > 0, got -1e-3");
    EXPECT_ERROR("base: {optim: {beta1: 1}}\n", ":1:23:", "key 'optim.beta1' must be in [0, 1), got 1");
    EXPECT_ERROR("base: {optim: {beta2: -0.1}}\n", ":1:23:", "must be in [0, 1), got -0.1");
    EXPECT_ERROR("base: {optim: {eps: 1e-400}}\n", ":1:21:", "'optim.eps' must be in (0, 1], got 1e-400");
    EXPECT_ERROR("base: {data: {augment: {crop_pad: 65}}}\n", ":1:35:", "must be in [0, 64], got 65");
    EXPECT_ERROR("base: {optim: {lr: 1000000000000000000000000000000000000000000000000000000000000000000000000000"
                 "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                 "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                 "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
                 "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000}}\n",
                 ":1:20:", "too many digits");

    /* values outside the allowed list */
    EXPECT_ERROR("base:\n  model:\n    arch: resnet20\n",
                 ":3:11: key 'model.arch' must be one of cifar_resnet18, cifar_resnet20, cifar_resnet8, "
                 "imagenet_resnet18, vgg_small, frcnn_resnet18; got 'resnet20'");
    EXPECT_ERROR("base: {optim: {name: adam}}\n", ":1:22:", "must be one of adamw, sgd; got 'adam' (did you mean 'adamw'?)");
    EXPECT_ERROR("base: {schedule: {lr: linear}}\n", ":1:23:", "'schedule.lr' must be one of cosine, step, constant");
    EXPECT_ERROR("base: {model: {conv: }}\n", ":1:22:", "'model.conv' must be one of fp32, cyclebnn; got ''");
    EXPECT_ERROR("base: {data: {dataset: FASHION_MNIST}}\n", ":1:24:", "must be one of fashion_mnist");

    /* duplicates: in one mapping, through a dotted key, a whole mapping, at the top level */
    EXPECT_ERROR("base:\n  optim:\n    lr: 0.1\n    lr: 0.2\n",
                 ":4:5: duplicate key 'optim.lr' (first given at line 3, column 5)");
    EXPECT_ERROR("base:\n  optim: {lr: 0.1}\n  optim.lr: 0.2\n",
                 ":3:3: duplicate key 'optim.lr' (first given at line 2, column 11)");
    EXPECT_ERROR("base:\n  optim: {lr: 0.1}\n  optim: {beta1: 0.5}\n",
                 ":3:3: duplicate key 'optim' (first given at line 2, column 3)");
    EXPECT_ERROR("name: a\nname: b\nbase: {}\n", ":2:1: duplicate key 'name' (first given at line 1, column 1)");
    EXPECT_ERROR("base: {}\nbase: {}\n", ":2:1: duplicate key 'base'");

    /* a mapping or sequence where a scalar is expected, and the reverse */
    EXPECT_ERROR("base:\n  optim:\n    lr: {a: 1}\n", ":3:9: key 'optim.lr' expects a number, got a mapping");
    EXPECT_ERROR("base:\n  optim:\n    lr: [1]\n", ":3:9: key 'optim.lr' expects a number, got a sequence");
    EXPECT_ERROR("base:\n  model:\n    arch:\n      - vgg_small\n", ":4:7:", "'model.arch' expects a string, got a sequence");
    EXPECT_ERROR("name: {a: b}\n", ":1:7: key 'name' expects a string, got a mapping");
    EXPECT_ERROR("description: [x]\n", ":1:14: key 'description' expects a string, got a sequence");
    EXPECT_ERROR("base:\n  optim: 5\n", ":2:10:", "key 'optim' expects a mapping (with keys name, lr,", "got the scalar '5'");
    EXPECT_ERROR("base: {data: {augment: [flip]}}\n", ":1:24:", "key 'data.augment' expects a mapping (with keys flip, crop_pad, crop_fill_mean, autoaugment, cutout, "
                 "random_resized_crop, rrc_scale_min, rrc_scale_max, rrc_ratio_min, rrc_ratio_max, lighting), got a sequence");
    EXPECT_ERROR("base: 3\n", ":1:7:",
                 "key 'base' expects a mapping (with keys model, binary, data, optim, schedule, precision, train, "
                 "detect), got the scalar '3'");
    EXPECT_ERROR("base: [1]\n", ":1:7:", "key 'base' expects a mapping", "got a sequence");
    EXPECT_ERROR("base: {[a]: 1}\n", ":1:8:", "a key must be a scalar, got a sequence");
    EXPECT_ERROR("? {a: 1}\n: x\n", ":1:3:", "a key must be a scalar, got a mapping");
    EXPECT_ERROR("- a\n- b\n", ":1:1:", "the top level must be a mapping", "got a sequence");
    EXPECT_ERROR("hello\n", ":1:1:", "the top level must be a mapping", "got a scalar");

    /* anchors are harmless, aliases are refused (they could build cycles) */
    EXPECT_ERROR("base:\n  optim:\n    lr: &x 0.1\n    eps: *x\n", ":4:10: aliases are not supported (*x)");
    EXPECT_ERROR("base: &b {optim: *b}\n", ":1:18:", "aliases are not supported");
    EXPECT_ERROR("a: &a [*a]\n", ":1:1:", "unknown key 'a'");

    /* YAML syntax errors, with libyaml's own position */
    EXPECT_ERROR("base: {optim: {lr: 1}\n", ":2:1: YAML syntax error: did not find expected ',' or '}'",
                 "while parsing a flow mapping at line 1, column 7");
    EXPECT_ERROR("base:\n  optim:\n    lr: 1\n   beta1: 2\n", ":4:4: YAML syntax error:");
    EXPECT_ERROR("base:\n\toptim: {}\n", ":2:1: YAML syntax error: found character that cannot start any token");
    EXPECT_ERROR("base: {optim: {lr: \"abc}}\n", ":2:1: YAML syntax error: found unexpected end of stream");
    EXPECT_ERROR("name: a\n  b: c\n", ":2:4: YAML syntax error: mapping values are not allowed in this context");
    EXPECT_ERROR("name: x\x01y\n", ":1:8: YAML syntax error: control characters are not allowed (#1)");
    EXPECT_ERROR("name: \xff\n", ":1:7: YAML syntax error: invalid leading UTF-8 octet (#FF)");

    {
        /* UTF-16 (with NULs, so not through strlen) */
        static const char u16[] = "\xff\xfe" "b\0a\0s\0e\0:\0 \0{\0}\0\n\0";
        ExperimentConfig e;
        int rc = experiment_parse(&e, u16, sizeof u16 - 1, FILE_NAME, err, sizeof err);
        CHECK(rc == -1 && !strcmp(err, FILE_NAME ":1:1: the file is UTF-16; save it as UTF-8"), "[%s]", err);
    }

    /* empty input, more than one document */
    EXPECT_ERROR("", FILE_NAME ":1:1: empty file");
    EXPECT_ERROR("# only a comment\n\n   \n", ":1:1: empty file");
    EXPECT_ERROR("---\n", ":2:1: empty document");
    EXPECT_ERROR("base: {}\n---\nbase: {}\n", ":2:1: more than one YAML document");

    /* name and description */
    EXPECT_ERROR("name: \"\"\nbase: {}\n", ":1:7: key 'name' must not be empty");
    EXPECT_ERROR("name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", ":1:7:",
                 "key 'name' is too long (73 bytes, at most 63)");
    EXPECT_ERROR("name: \"a\\0b\"\n", ":1:7:", "key 'name' must not contain a NUL character");
    EXPECT_ERROR("base: {data: {path: \"a\\0b\"}}\n", ":1:21:", "'data.path' must not contain a NUL character");

    /* constraints between keys, located at the key that was set */
    EXPECT_ERROR("base:\n  schedule:\n    lr: step\n",
                 ":3:5: key 'schedule.step_size' must be > 0 when schedule.lr is 'step', got 0");
    EXPECT_ERROR("base:\n  schedule:\n    lr: step\n    step_size: 0\n", ":4:5:", "'schedule.step_size' must be > 0");
    EXPECT_ERROR("base:\n  train:\n    epochs: 0\n", ":3:5: key 'train.epochs' must be > 0 when train.iterations is 0");
    EXPECT_ERROR("base: {optim: {name: sgd, momentum: 0, nesterov: true}}\n", ":1:40:",
                 "'optim.nesterov' needs optim.momentum > 0 and optim.dampening = 0");
    EXPECT_ERROR("base: {train: {iterations: 100}, schedule: {cyclic_warmup: 25}}\n", ":1:45:",
                 "'schedule.cyclic_warmup' leaves no iterations to anneal");
    ExperimentConfig e;
    if (!PARSE_OK(&e, "base: {train: {iterations: 100}, schedule: {cyclic_warmup: 24}}\n")) experiment_free(&e);
    if (!PARSE_OK(&e, "base: {optim: {name: adamw, momentum: 0, nesterov: true}}\n")) experiment_free(&e);

    /* every message is one line, even for keys with newlines in them */
    EXPECT_ERROR("base: {\"x\\ny\": 1}\n", "'x\\ny'");
}

static void test_files(void) {
    ExperimentConfig e;
    int rc = experiment_load(&e, "no/such/dir/exp.yaml", err, sizeof err);
    CHECK(rc == -1 && !strcmp(err, "no/such/dir/exp.yaml: cannot open: No such file or directory"), "[%s]", err);
    rc = experiment_load(&e, ".", err, sizeof err);
    CHECK(rc == -1 && !strncmp(err, ".: cannot read", 14), "[%s]", err);

    char path[64];
    snprintf(path, sizeof path, "test_config_%ld.yaml", (long)getpid());
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(FULL_BLOCK + strlen("name: full\n"), f); /* no name: it comes from the file name */
    fclose(f);
    rc = experiment_load(&e, path, err, sizeof err);
    CHECK(rc == 0, "load: %s", err);
    if (rc == 0) {
        char want[64];
        snprintf(want, sizeof want, "test_config_%ld", (long)getpid());
        CHECK(!strcmp(e.name, want), "name %s", e.name);
        CHECK(!strcmp(e.path, path), "path %s", e.path);
        CHECK(e.yaml_text && !strcmp(e.yaml_text, FULL_BLOCK + strlen("name: full\n")), "yaml_text verbatim");
        check_full(&e.base);
        experiment_free(&e);
        CHECK(e.yaml_text == NULL, "experiment_free clears yaml_text");
        experiment_free(&e); /* twice is harmless */
    }
    /* an error in a loaded file names the file */
    f = fopen(path, "wb");
    if (f) {
        fputs("base:\n  optim:\n    lrr: 1\n", f);
        fclose(f);
        rc = experiment_load(&e, path, err, sizeof err);
        char want[128];
        snprintf(want, sizeof want, "%s:3:5: unknown key 'optim.lrr'", path);
        CHECK(rc == -1 && !strncmp(err, want, strlen(want)), "[%s]", err);
    }
    f = fopen(path, "wb");
    if (f) {
        fclose(f);
        rc = experiment_load(&e, path, err, sizeof err);
        CHECK(rc == -1 && strstr(err, ":1:1: empty file"), "[%s]", err);
    }
    remove(path);

    /* a name from an overlong file name is an error unless name: is set */
    char longpath[128];
    memset(longpath, 'x', 80);
    strcpy(longpath + 80, ".yaml");
    rc = experiment_parse(&e, "base: {}\n", 9, longpath, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "longer than 63 bytes: set name:"), "[%s]", err);
    rc = experiment_parse(&e, "name: short\n", 12, longpath, err, sizeof err);
    CHECK(rc == 0, "[%s]", err);
    if (rc == 0) experiment_free(&e);
    rc = experiment_parse(&e, "base: {}\n", 9, "dir/.yaml", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "gives no experiment name"), "[%s]", err);

    /* on failure *e is untouched; tiny and absent error buffers are safe */
    memset(&e, 0x5a, sizeof e);
    ExperimentConfig copy = e;
    rc = experiment_parse(&e, "base: {optim: {lr: 0}}\n", 23, FILE_NAME, err, sizeof err);
    CHECK(rc == -1 && !memcmp(&e, &copy, sizeof e), "e touched on failure");
    char small[8];
    rc = experiment_parse(&e, "base: {optim: {lr: 0}}\n", 23, FILE_NAME, small, sizeof small);
    CHECK(rc == -1 && !strcmp(small, "t.yaml:"), "small buffer [%s]", small);
    rc = experiment_parse(&e, "base: {optim: {lr: 0}}\n", 23, FILE_NAME, NULL, 0);
    CHECK(rc == -1, "NULL err");
    rc = experiment_load(&e, "no/such/file", NULL, 0);
    CHECK(rc == -1, "NULL err on load");
    /* the text need not be NUL-terminated: only len bytes are read */
    char buf[16];
    memcpy(buf, "base: {}XXXXXXXX", 16);
    rc = experiment_parse(&e, buf, 8, FILE_NAME, err, sizeof err);
    CHECK(rc == 0 && e.yaml_text && !strcmp(e.yaml_text, "base: {}"), "len respected [%s]", err);
    if (rc == 0) experiment_free(&e);
}

/* ---------------------------------------------------------------- grid:, seeds:, runs: */

/* The runs must be exactly `names`, in order (NULL-terminated). */
static void check_names_(int line, const ExperimentConfig *e, const char *const *names) {
    int n = 0;
    while (names[n]) n++;
    tu_checks++;
    int ok = e->n_runs == n && e->runs;
    for (int i = 0; ok && i < n; i++) ok = !strcmp(e->runs[i].name, names[i]);
    if (!ok) {
        tu_failures++;
        fprintf(stderr, "FAIL %s:%d: %d runs, expected %d:", __FILE__, line, e->n_runs, n);
        for (int i = 0; i < e->n_runs && i < 64; i++) fprintf(stderr, " [%s]", e->runs[i].name);
        fprintf(stderr, "\n");
    }
}
#define CHECK_NAMES(e, ...) check_names_(__LINE__, e, (const char *const[]){__VA_ARGS__, NULL})

/* a run equals base except in the fields the caller lists: compare with a
 * copy of base into which the caller wrote those fields */
static int same_config(const RunConfig *a, const RunConfig *b) { return !memcmp(a, b, sizeof *a); }

/* The enum-valued keys: each name is parsed to its value once, and
 * config_enum_name gives the name back. */
static void test_enum_keys(void) {
    static const struct {
        const char *key, *name;
        size_t off;
        int value;
    } cases[] = {
        {"model.conv", "fp32", offsetof(RunConfig, conv), CONV_FP32},
        {"model.conv", "cyclebnn", offsetof(RunConfig, conv), CONV_BINARY},
        {"binary.sign_zero", "zero", offsetof(RunConfig, sign_zero), SIGN_ZERO_IS_ZERO},
        {"binary.sign_zero", "plus_one", offsetof(RunConfig, sign_zero), SIGN_ZERO_IS_PLUS_ONE},
        {"binary.pad", "zero", offsetof(RunConfig, bin_pad), BIN_PAD_ZERO},
        {"binary.pad", "minus_one", offsetof(RunConfig, bin_pad), BIN_PAD_MINUS_ONE},
        {"binary.act_grad", "approx_sign", offsetof(RunConfig, act_grad), ACT_GRAD_APPROX_SIGN},
        {"binary.act_grad", "ste", offsetof(RunConfig, act_grad), ACT_GRAD_STE},
        {"binary.backward", "int8", offsetof(RunConfig, bin_backward), BIN_BACKWARD_INT8},
        {"binary.backward", "fp32", offsetof(RunConfig, bin_backward), BIN_BACKWARD_FP32},
        {"optim.name", "adamw", offsetof(RunConfig, optimizer), OPTIM_ADAMW},
        {"optim.name", "sgd", offsetof(RunConfig, optimizer), OPTIM_SGD},
        {"schedule.lr", "cosine", offsetof(RunConfig, lr_schedule), LR_COSINE},
        {"schedule.lr", "step", offsetof(RunConfig, lr_schedule), LR_STEP},
        {"schedule.lr", "constant", offsetof(RunConfig, lr_schedule), LR_CONSTANT},
        {"precision.schedule", "cyclic", offsetof(RunConfig, prec_schedule), PREC_CYCLIC},
        {"precision.schedule", "fixed", offsetof(RunConfig, prec_schedule), PREC_FIXED},
        {"precision.schedule", "full", offsetof(RunConfig, prec_schedule), PREC_FULL},
        {"precision.eval", "faithful", offsetof(RunConfig, prec_eval), PREC_EVAL_FAITHFUL},
        {"precision.eval", "fixed", offsetof(RunConfig, prec_eval), PREC_EVAL_FIXED},
        /* the detector's: RpnConvKind of core/detect/frcnn.h, and the values tasks/detect.h uses */
        {"detect.rpn_conv", "bidet", offsetof(RunConfig, rpn_conv), RPN_CONV_BIDET},
        {"detect.rpn_conv", "cyclebnn", offsetof(RunConfig, rpn_conv), RPN_CONV_CYCLEBNN},
        {"detect.rpn_conv", "fp32", offsetof(RunConfig, rpn_conv), RPN_CONV_FP32},
        {"detect.box_noise", "always", offsetof(RunConfig, box_noise), 0},
        {"detect.box_noise", "train", offsetof(RunConfig, box_noise), 1},
        {"detect.box_noise", "off", offsetof(RunConfig, box_noise), 2},
        {"detect.rpn_weight", "last_image", offsetof(RunConfig, rpn_weight), 0},
        {"detect.rpn_weight", "per_image", offsetof(RunConfig, rpn_weight), 1},
        {"detect.ib_start", "first_decay", offsetof(RunConfig, ib_start), 0},
        {"detect.ib_start", "always", offsetof(RunConfig, ib_start), 1},
        {"detect.ib_start", "never", offsetof(RunConfig, ib_start), 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        /* quoted or not, a name is a name; step needs its step_size, fixed one bit width */
        snprintf(text, sizeof text, "base: {schedule.step_size: 10, precision.bits: 4, %s: %s%s%s}\n", cases[i].key,
                 i % 2 ? "'" : "",
                 cases[i].name, i % 2 ? "'" : "");
        ExperimentConfig e;
        if (PARSE_OK(&e, text)) continue;
        int v;
        memcpy(&v, (const char *)&e.base + cases[i].off, sizeof v);
        CHECK(v == cases[i].value, "%s: %s parsed to %d, expected %d", cases[i].key, cases[i].name, v, cases[i].value);
        CHECK(!strcmp(config_enum_name(cases[i].key, cases[i].value), cases[i].name), "config_enum_name(%s, %d) = %s",
              cases[i].key, cases[i].value, config_enum_name(cases[i].key, cases[i].value));
        CHECK_ROUND_TRIP(&e.base);
        experiment_free(&e);
    }
    CHECK(!strcmp(config_enum_name("model.conv", 7), "?") && !strcmp(config_enum_name("model.arch", 0), "?") &&
              !strcmp(config_enum_name("model.convv", 0), "?") && !strcmp(config_enum_name(NULL, 0), "?"),
          "config_enum_name of no enum key or value");
    /* an enum axis: named and compared by its names */
    ExperimentConfig e;
    if (!PARSE_OK(&e, "name: g\ngrid:\n  precision.schedule: [fixed, full]\n  model.conv: [cyclebnn, fp32]\n"
                      "base: {precision.bits: 4}\n")) {
        CHECK_NAMES(&e, "schedule=fixed,conv=cyclebnn", "schedule=fixed,conv=fp32", "schedule=full,conv=cyclebnn",
                    "schedule=full,conv=fp32");
        if (e.n_runs == 4)
            CHECK(e.runs[0].c.prec_schedule == PREC_FIXED && e.runs[0].c.conv == CONV_BINARY &&
                      e.runs[3].c.prec_schedule == PREC_FULL && e.runs[3].c.conv == CONV_FP32,
                  "enum grid values");
        experiment_free(&e);
    }
    EXPECT_ERROR("grid: {optim.name: [sgd, adamw, sgd]}\n", ":1:33:",
                 "grid axis 'optim.name' has the value 'sgd' twice (first at line 1, column 21)");
    EXPECT_ERROR("base: {schedule: {lr: [step]}}\n", ":1:23:", "key 'schedule.lr' expects a string, got a sequence");
    EXPECT_ERROR("base: {precision: {eval: ~}}\n", ":1:26:", "'precision.eval' must be one of faithful, fixed; got '~'");
}

static void test_grid_two_axes(void) {
    ExperimentConfig e;
    if (PARSE_OK(&e, "name: g2\n"
                     "base: {precision: {schedule: cyclic}, train: {iterations: 1000}}\n"
                     "grid:\n"
                     "  precision.cycles: [4, 8, 16]\n"
                     "  optim.name: [adamw, sgd]\n"))
        return;
    CHECK_NAMES(&e, "cycles=4,name=adamw", "cycles=4,name=sgd", "cycles=8,name=adamw", "cycles=8,name=sgd",
                "cycles=16,name=adamw", "cycles=16,name=sgd");
    CHECK(e.n_axes == 2 && !strcmp(e.axis_names[0], "precision.cycles") && !strcmp(e.axis_names[1], "optim.name"),
          "axes %d", e.n_axes);
    static const int cycles[] = {4, 4, 8, 8, 16, 16};
    for (int i = 0; i < e.n_runs && i < 6; i++) {
        RunConfig want = e.base;
        want.prec_cycles = cycles[i];
        want.optimizer = i % 2 ? OPTIM_SGD : OPTIM_ADAMW;
        CHECK(same_config(&e.runs[i].c, &want), "run %d (%s) is not base + its grid values", i, e.runs[i].name);
    }
    CHECK(e.base.prec_cycles == 8 && e.base.optimizer == OPTIM_ADAMW, "base is left as written");
    experiment_free(&e);
    CHECK(e.runs == NULL && e.n_runs == 0, "experiment_free clears runs");
}

static void test_grid_seeds_only(void) {
    ExperimentConfig e;
    if (PARSE_OK(&e, "name: s\nseeds: [3, 1, 18446744073709551615, 0]\n")) return;
    CHECK_NAMES(&e, "seed=3", "seed=1", "seed=18446744073709551615", "seed=0");
    static const uint64_t seeds[] = {3, 1, UINT64_MAX, 0};
    for (int i = 0; i < e.n_runs && i < 4; i++) {
        RunConfig want = e.base;
        want.seed = seeds[i];
        CHECK(same_config(&e.runs[i].c, &want), "seed run %d", i);
    }
    CHECK(e.n_axes == 1 && !strcmp(e.axis_names[0], "train.seed"), "the seeds axis is train.seed");
    experiment_free(&e);
}

static void test_grid_runs_only(void) {
    ExperimentConfig e;
    if (PARSE_OK(&e, "name: r\n"
                     "runs:\n"
                     "  cyclic:\n"
                     "    precision: {schedule: cyclic, bits: [2, 6]}\n"
                     "  fixed.6: {precision.schedule: fixed, precision: {bits: 6}}\n"
                     "  full: {}\n"
                     "  \"x+y=1-2_Z\":\n"
                     "base:\n"
                     "  train: {seed: 9}\n"))
        return;
    CHECK_NAMES(&e, "cyclic", "fixed.6", "full", "x+y=1-2_Z");
    CHECK(e.n_axes == 0, "no axes");
    if (e.n_runs == 4) {
        RunConfig want = e.base;
        want.prec_schedule = PREC_CYCLIC;
        CHECK(same_config(&e.runs[0].c, &want), "cyclic run");
        want.prec_schedule = PREC_FIXED;
        want.bits.min = want.bits.max = 6;
        CHECK(same_config(&e.runs[1].c, &want), "fixed run");
        CHECK(same_config(&e.runs[2].c, &e.base) && same_config(&e.runs[3].c, &e.base), "{} and null = base as is");
        CHECK(e.base.seed == 9 && e.runs[1].c.seed == 9, "base: after runs: still applies");
    }
    experiment_free(&e);
}

/* runs x grid x seeds, with the top-level keys in an unusual order */
static void test_grid_combined(void) {
    ExperimentConfig e;
    if (PARSE_OK(&e, "seeds: [1, 2]\n"
                     "grid:\n"
                     "  precision.cycles: [4, 8]\n"
                     "  optim.lr: [0.001, 0.002]\n"
                     "runs:\n"
                     "  cyclic: {precision: {schedule: cyclic, bits: [2, 6]}}\n"
                     "  fixed6: {precision.schedule: fixed, precision.bits: 6}\n"
                     "name: combo\n"
                     "base:\n"
                     "  model: {conv: cyclebnn}\n"
                     "  train: {iterations: 400, seed: 77}\n"))
        return;
    CHECK(e.n_runs == 16, "16 runs, got %d", e.n_runs);
    CHECK(e.n_axes == 3 && !strcmp(e.axis_names[0], "precision.cycles") && !strcmp(e.axis_names[1], "optim.lr") &&
              !strcmp(e.axis_names[2], "train.seed"),
          "axes: grid in file order, then the seed");
    int i = 0;
    static const char *const runs[] = {"cyclic", "fixed6"};
    static const int cycles[] = {4, 8};
    static const double lrs[] = {0.001, 0.002};
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 2; c++)
            for (int l = 0; l < 2; l++)
                for (int s = 1; s <= 2; s++, i++) {
                    if (i >= e.n_runs) continue;
                    char name[128];
                    snprintf(name, sizeof name, "%s,cycles=%d,lr=%s,seed=%d", runs[r], cycles[c], l ? "0.002" : "0.001",
                             s);
                    const RunSpec *rs = &e.runs[i];
                    CHECK(!strcmp(rs->name, name), "run %d named %s, expected %s", i, rs->name, name);
                    RunConfig want = e.base;
                    want.prec_schedule = r ? PREC_FIXED : PREC_CYCLIC;
                    want.bits.min = r ? 6 : 2;
                    want.bits.max = 6;
                    want.prec_cycles = cycles[c];
                    want.lr = lrs[l];
                    want.seed = (uint64_t)s;
                    CHECK(same_config(&rs->c, &want), "run %s: base + overrides + grid + seed", rs->name);
                }
    CHECK(e.base.seed == 77 && e.base.prec_schedule == PREC_FULL, "base untouched by the expansion");
    experiment_free(&e);
}

static void test_grid_values(void) {
    ExperimentConfig e;
    /* bits: n or [min, max], block or flow */
    if (!PARSE_OK(&e, "name: b\nbase: {precision: {schedule: cyclic}}\n"
                      "grid:\n  precision.bits:\n    - [2, 6]\n    - 4\n    - [1, 8]\n    - [5, 5]\n"
                      "  precision.grad_bits: [[4, 8]]\n")) {
        CHECK_NAMES(&e, "bits=2-6,grad_bits=4-8", "bits=4,grad_bits=4-8", "bits=1-8,grad_bits=4-8",
                    "bits=5,grad_bits=4-8");
        if (e.n_runs == 4)
            CHECK(e.runs[0].c.bits.min == 2 && e.runs[0].c.bits.max == 6 && e.runs[1].c.bits.min == 4 &&
                      e.runs[1].c.bits.max == 4 && e.runs[2].c.bits.min == 1 && e.runs[2].c.bits.max == 8 &&
                      e.runs[3].c.grad_bits.min == 4 && e.runs[3].c.grad_bits.max == 8,
                  "bits values");
        experiment_free(&e);
    }
    /* [4, 4] and 4 are the same value */
    EXPECT_ERROR("grid: {precision.bits: [4, [4, 4]]}\n", ":1:28:", "has the value 4 twice (first at line 1, column 25)");
    /* numbers print in their shortest round-trip form */
    if (!PARSE_OK(&e, "name: d\ngrid:\n  optim.lr: [0.001, 1e-4, 1.5E+2, 2_0.0, 0.1]\n")) {
        CHECK_NAMES(&e, "lr=0.001", "lr=0.0001", "lr=1.5e+02", "lr=2e+01", "lr=0.1");
        if (e.n_runs == 5)
            CHECK(e.runs[0].c.lr == 0.001 && e.runs[1].c.lr == 1e-4 && e.runs[2].c.lr == 150 && e.runs[4].c.lr == 0.1,
                  "lr values");
        experiment_free(&e);
    }
    EXPECT_ERROR("grid: {optim.weight_decay: [0, -0.0]}\n", ":1:32:", "has the value -0 twice");
    /* booleans, strings ('/' -> '_'), longs; axes sharing a last segment use the full path */
    if (!PARSE_OK(&e, "name: s\ngrid:\n  data.normalize: [yes, off]\n  data.path: [\"/a/b\", c, '']\n"
                      "  optim.lr: [0.5]\n  schedule.lr: [constant]\n  train.iterations: [1_000]\n")) {
        CHECK_NAMES(&e, "normalize=true,path=_a_b,optim.lr=0.5,schedule.lr=constant,iterations=1000",
                    "normalize=true,path=c,optim.lr=0.5,schedule.lr=constant,iterations=1000",
                    "normalize=true,path=,optim.lr=0.5,schedule.lr=constant,iterations=1000",
                    "normalize=false,path=_a_b,optim.lr=0.5,schedule.lr=constant,iterations=1000",
                    "normalize=false,path=c,optim.lr=0.5,schedule.lr=constant,iterations=1000",
                    "normalize=false,path=,optim.lr=0.5,schedule.lr=constant,iterations=1000");
        if (e.n_runs == 6)
            CHECK(!strcmp(e.runs[0].c.data_path, "/a/b") && e.runs[0].c.normalize == 1 && e.runs[5].c.normalize == 0 &&
                      e.runs[5].c.data_path[0] == 0 && e.runs[3].c.iterations == 1000 &&
                      e.runs[3].c.lr_schedule == LR_CONSTANT,
                  "bool/string/long values (the name changes '/', the value does not)");
        experiment_free(&e);
    }
    /* a grid value is checked like a base: value */
    EXPECT_ERROR("grid: {optim.lr: [0.1, \"0.2\"]}\n", ":1:24:", "key 'optim.lr' expects a number, got the quoted string");
    EXPECT_ERROR("grid: {optim.name: [adamw, adam]}\n", ":1:28:", "must be one of adamw, sgd; got 'adam' (did you mean 'adamw'?)");
    EXPECT_ERROR("grid: {optim.lr: [0.1, [0.2]]}\n", ":1:24:", "grid axis 'optim.lr' expects a list of values, got a sequence in the list");
    EXPECT_ERROR("grid: {precision.bits: [[2, [3]]]}\n", ":1:29:", "expects a list of bit widths [min, max], got a sequence in the list");
    EXPECT_ERROR("grid: {precision.bits: [[2, 3, 4]]}\n", ":1:25:", "expects a list of two bit widths [min, max], got 3 elements");
    EXPECT_ERROR("grid: {optim.lr: ~}\n", ":1:18:", "grid axis 'optim.lr' expects a list of values, got an empty value");
    EXPECT_ERROR("grid: {optim.lr: {a: 1}}\n", ":1:18:", "grid axis 'optim.lr' expects a list of values, got a mapping");
    EXPECT_ERROR("grid: [optim.lr]\n", ":1:7:", "key 'grid' expects a mapping of dotted keys to lists of values");
    EXPECT_ERROR("grid: {lr: [0.1]}\n", ":1:8:", "grid axis 'lr' names no key (did you mean 'optim.lr' or 'schedule.lr'?)");
    EXPECT_ERROR("grid: {base.optim.lr: [0.1]}\n", ":1:8:", "grid axis 'base.optim.lr' names no key (did you mean 'optim.lr'?");
    EXPECT_ERROR("grid: {data.augment: {flip: [true]}}\n", ":1:8:", "e.g. 'data.augment.flip: [...]'");
    EXPECT_ERROR("grid: {precision: [1]}\n", ":1:8:", "grid axis 'precision' is a group of keys", "e.g. 'precision.schedule: [...]'");
    EXPECT_ERROR("grid: {*a : [1]}\n", ":1:8:", "aliases are not supported");
    EXPECT_ERROR("grid: {optim.lr: *a}\n", ":1:18:", "aliases are not supported (*a)");
    EXPECT_ERROR("grid: {}\ngrid: {}\n", ":2:1: duplicate key 'grid'");
    EXPECT_ERROR("grid: {train.seed: [1]}\nseeds: [2]\n", ":2:1: seeds: is also given as the grid axis 'train.seed' (line 1, column 8)");
    EXPECT_ERROR("seeds: []\n", ":1:8: key 'seeds' has an empty list of values");
    EXPECT_ERROR("seeds:\n", ":1:7: key 'seeds' expects a list of non-negative integers, got an empty value");
    EXPECT_ERROR("seeds: [1.5]\n", ":1:9: key 'seeds' expects a non-negative integer, got '1.5'");
    EXPECT_ERROR("seeds: [[1]]\n", ":1:9: key 'seeds' expects a list of non-negative integers, got a sequence in the list");
    EXPECT_ERROR("runs: 3\n", ":1:7: key 'runs' expects a mapping of run names to overrides");
    EXPECT_ERROR("runs:\n", ":1:1: key 'runs' names no run");
    EXPECT_ERROR("runs: {~: {}}\n", ":1:8: a run name must not be empty");
    EXPECT_ERROR("runs: {.: {}}\n", ":1:8: run name '.' is not allowed");
    EXPECT_ERROR("runs: {\"a,b\": {}}\n", ":1:8: run name 'a,b' may use only");
    EXPECT_ERROR("runs:\n  caf\xc3\xa9: {}\n", ":2:3: run name 'caf\xc3\xa9' may use only");
    EXPECT_ERROR("runs: {[a]: {}}\n", ":1:8: a key must be a scalar, got a sequence");
    EXPECT_ERROR("runs: {a: {optim: {lr: 0.1, lr: 0.2}}}\n", ":1:29: duplicate key 'optim.lr' (first given at line 1, column 20)");
    EXPECT_ERROR("runs: {a: {xyzzy: 1}}\n", ":1:12:", "allowed under 'runs.a': model, binary");
    EXPECT_ERROR("runs: {a: {optim: {lr: 0}}}\n", ":1:24: key 'optim.lr' must be > 0, got 0");
    /* the same key in two runs and in base is not a duplicate */
    if (!PARSE_OK(&e, "base: {optim.lr: 0.1}\nruns: {a: {optim.lr: 0.2}, b: {optim: {lr: 0.3}}}\n")) {
        CHECK(e.n_runs == 2 && e.runs[0].c.lr == 0.2 && e.runs[1].c.lr == 0.3 && e.base.lr == 0.1, "per-run overrides");
        experiment_free(&e);
    }
    /* a cross-check failure points at the value to blame, and says which run */
    EXPECT_ERROR("base: {train: {iterations: 100}, precision: {schedule: cyclic}}\ngrid: {precision.cycles: [10, 101]}\n",
                 ":2:31: in run 'cycles=101': key 'precision.cycles' needs at least one iteration per cycle");
    EXPECT_ERROR("base: {train: {iterations: 100}}\nseeds: [1]\nruns: {a: {precision.schedule: cyclic, precision.cycles: 200}}\n",
                 ":3:40: in run 'a,seed=1': key 'precision.cycles' needs at least one iteration per cycle");
    /* ... or, when no grid value or override set a blamed key, at base: as without a grid */
    EXPECT_ERROR("base:\n  schedule:\n    lr: step\nseeds: [1, 2]\n",
                 ":3:5: in run 'seed=1': key 'schedule.step_size' must be > 0 when schedule.lr is 'step'");
    /* base: alone need not pass the checks when every run fixes it */
    if (!PARSE_OK(&e, "base: {precision: {schedule: fixed}}\ngrid: {precision.bits: [4, 6]}\n")) experiment_free(&e);
}

static void test_grid_single_run(void) {
    ExperimentConfig e;
    const char *docs[] = {"name: solo\nbase: {optim.lr: 0.01}\n", "name: solo\nbase: {optim.lr: 0.01}\ngrid: {}\n",
                          "name: solo\ngrid:\nbase: {optim.lr: 0.01}\n"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        if (PARSE_OK(&e, docs[i])) continue;
        CHECK_NAMES(&e, "solo");
        CHECK(e.n_runs == 1 && same_config(&e.runs[0].c, &e.base) && e.base.lr == 0.01 && e.n_axes == 0,
              "one run = base for [%s]", docs[i]);
        experiment_free(&e);
    }
    /* named after the file when name: is absent */
    if (!experiment_parse(&e, "base: {}", 8, "dir/my_exp.yaml", err, sizeof err)) {
        CHECK_NAMES(&e, "my_exp");
        experiment_free(&e);
    }
}

/* a document with an axis of n values 1..n on `key` (n = 0: none), and seeds 1..nseeds */
static char *grid_doc(int naxes, const char *const *keys, int nvals, int nseeds) {
    size_t cap = (size_t)(naxes * (nvals + 2) + nseeds + 8) * 16 + 256;
    char *d = malloc(cap);
    size_t o = 0;
    o += (size_t)snprintf(d + o, cap - o, "name: cap\ngrid:\n");
    for (int a = 0; a < naxes; a++) {
        o += (size_t)snprintf(d + o, cap - o, "  %s: [", keys[a]);
        for (int v = 1; v <= nvals; v++) o += (size_t)snprintf(d + o, cap - o, "%s%d", v > 1 ? ", " : "", v);
        o += (size_t)snprintf(d + o, cap - o, "]\n");
    }
    if (nseeds) {
        o += (size_t)snprintf(d + o, cap - o, "seeds: [");
        for (int v = 1; v <= nseeds; v++) o += (size_t)snprintf(d + o, cap - o, "%s%d", v > 1 ? ", " : "", v);
        o += (size_t)snprintf(d + o, cap - o, "]\n");
    }
    return d;
}

static void test_grid_cap(void) {
    static const char *const keys[] = {"data.train_subset", "data.test_subset", "schedule.step_size",
                                       "schedule.warmup_iters", "train.eval_interval", "train.log_interval",
                                       "train.iterations", "train.threads", "data.augment.crop_pad"};
    ExperimentConfig e;
    /* exactly the cap */
    char *d = grid_doc(1, keys, 64, 64);
    if (!PARSE_OK(&e, d)) {
        CHECK(e.n_runs == 4096 && !strcmp(e.runs[0].name, "train_subset=1,seed=1") &&
                  !strcmp(e.runs[4095].name, "train_subset=64,seed=64") && e.runs[4095].c.train_subset == 64 &&
                  e.runs[4095].c.seed == 64 && e.runs[64].c.train_subset == 2 && e.runs[64].c.seed == 1,
              "4096 runs");
        experiment_free(&e);
    }
    free(d);
    /* one over */
    d = grid_doc(1, keys, 65, 64);
    EXPECT_ERROR(d, ":2:1: the grid expands to 4160 runs (at most 4096)");
    free(d);
    /* 300^8 overflows 64 bits: the count must not wrap to something small */
    d = grid_doc(8, keys, 300, 0);
    EXPECT_ERROR(d, ":2:1: the grid expands to more than 18446744073709551615 runs (at most 4096)");
    free(d);
    /* 2^8 * 2^8 = 65536 with 16 axes is refused earlier: at most 8 axes */
    d = grid_doc(9, keys, 1, 0);
    EXPECT_ERROR(d, ":11:3: too many grid axes (at most 8, seeds: counting as one)");
    free(d);
    d = grid_doc(8, keys, 1, 1);
    EXPECT_ERROR(d, ":11:1: too many grid axes with seeds: (at most 8");
    free(d);
    d = grid_doc(8, keys, 1, 0);
    if (!PARSE_OK(&e, d)) {
        CHECK(e.n_runs == 1 && e.n_axes == 8 &&
                  !strcmp(e.runs[0].name, "train_subset=1,test_subset=1,step_size=1,warmup_iters=1,eval_interval=1,"
                                          "log_interval=1,iterations=1,threads=1"),
              "8 one-value axes: %s", e.n_runs ? e.runs[0].name : "");
        experiment_free(&e);
    }
    free(d);
    /* one axis or runs: longer than the cap stops while reading */
    d = grid_doc(1, keys, 4097, 0);
    EXPECT_ERROR(d, "grid axis 'data.train_subset' has more than 4096 values");
    free(d);
    {
        size_t cap = 4200 * 16 + 64, o = 0;
        d = malloc(cap);
        o += (size_t)snprintf(d, cap, "runs:\n");
        for (int i = 0; i <= 4096; i++) o += (size_t)snprintf(d + o, cap - o, "  r%d: {}\n", i);
        EXPECT_ERROR(d, ":4098:3: runs: has more than 4096 runs");
        free(d);
    }
    /* a run name over CFG_RUN_NAME - 1 bytes */
    EXPECT_ERROR("grid:\n  data.path: [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n",
                 ":1:1: the run name 'path=aaa", "would be longer than 255 bytes");
    /* failure after the runs were expanded (the name from the file name) leaves *e alone and leaks nothing */
    char longpath[128];
    memset(longpath, 'x', 80);
    strcpy(longpath + 80, ".yaml");
    memset(&e, 0x5a, sizeof e);
    ExperimentConfig copy = e;
    int rc = experiment_parse(&e, "grid: {optim.lr: [0.1, 0.2]}\n", 29, longpath, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "longer than 63 bytes: set name:") && !memcmp(&e, &copy, sizeof e), "[%s]", err);
}

/* Issue 12 item 6: quantities derived from several keys are range-checked
 * as the file loads, not only the keys. train.epochs: 1e300 is a valid
 * number, but epochs x steps per epoch overflowed a long (every run "was
 * interrupted at step 0", --dry-run printed negative MACs), and 4 x
 * schedule.cyclic_warmup overflowed in the schedules. The bound is
 * CFG_MAX_ITERATIONS = 2^40; the steps per epoch come from the dataset's
 * published size (dataset_nominal), less the validation hold-out
 * (data.val_split: 5,000 / 5,000 / 10,000 by default), after data.train_subset. */
static void test_derived_ranges(void) {
    CHECK(CFG_MAX_ITERATIONS == 1099511627776L, "CFG_MAX_ITERATIONS = %ld", (long)CFG_MAX_ITERATIONS);
    EXPECT_ERROR("base:\n  train:\n    epochs: 1e300\n",
                 FILE_NAME ":3:5: key 'train.epochs' asks for more than 1099511627776 iterations (2^40, the most a "
                           "run may train for): 1e+300 epochs of 3437 steps (55000 fashion_mnist training images at "
                           "batch 16)");
    /* exactly at the bound, and one iteration over: 16 images at batch 16 are one step per epoch */
    ExperimentConfig e;
    if (!PARSE_OK(&e, "base: {data: {train_subset: 16}, train: {batch_size: 16, epochs: 1099511627776}}\n")) {
        CHECK(e.runs[0].c.epochs == 1099511627776.0, "epochs at the bound");
        experiment_free(&e);
    }
    EXPECT_ERROR("base: {data: {train_subset: 16}, train: {batch_size: 16, epochs: 1099511627777}}\n", ":1:58:",
                 "asks for more than 1099511627776 iterations", ": 1099511627777 epochs of 1 steps (16 fashion_mnist");
    /* fractions round up, as train_total_iterations does: 2^40 - 0.5 steps is 2^40 */
    if (!PARSE_OK(&e, "base: {data: {train_subset: 32}, train: {batch_size: 16, epochs: 549755813887.75}}\n"))
        experiment_free(&e);
    EXPECT_ERROR("base: {data: {train_subset: 32}, train: {batch_size: 16, epochs: 549755813888.25}}\n", ":1:58:",
                 "asks for more than 1099511627776 iterations", ": 549755813888.25 epochs of 2 steps");
    /* the published sizes of the other datasets */
    EXPECT_ERROR("base: {data: {dataset: imagenet}, train: {epochs: 1e8}}\n", ":1:43:",
                 "1e+08 epochs of 79447 steps (1271167 imagenet training images at batch 16)");
    if (!PARSE_OK(&e, "base: {data: {dataset: cifar10}, train: {epochs: 3e8}}\n")) experiment_free(&e); /* 9.4e11 */
    EXPECT_ERROR("base: {data: {dataset: cifar10}, train: {epochs: 4e8}}\n", ":1:42:", "(45000 cifar10 training");
    /* without the hold-out, the whole file */
    EXPECT_ERROR("base: {data: {dataset: cifar10, val_split: 0}, train: {epochs: 4e8}}\n", ":1:56:", "(50000 cifar10 training");
    /* a subset larger than the set counts as the whole set */
    EXPECT_ERROR("base: {data: {train_subset: 1000000}, train: {epochs: 1e300}}\n", ":1:47:",
                 "of 3437 steps (55000 fashion_mnist");
    /* train.epochs does not count when train.iterations is set */
    if (!PARSE_OK(&e, "base: {train: {iterations: 10, epochs: 1e300}}\n")) experiment_free(&e);
    /* train.iterations and W themselves */
    if (!PARSE_OK(&e, "base: {train: {iterations: 1099511627776}}\n")) experiment_free(&e);
    EXPECT_ERROR("base: {train: {iterations: 1099511627777}}\n", ":1:28:",
                 "key 'train.iterations' must be in [0, 1099511627776], got 1099511627777");
    EXPECT_ERROR("base: {train: {iterations: 1000000000000000000}}\n", ":1:28:",
                 "key 'train.iterations' must be in [0, 1099511627776], got 1000000000000000000");
    EXPECT_ERROR("base: {schedule: {cyclic_warmup: 274877906945}}\n", ":1:34:",
                 "key 'schedule.cyclic_warmup' must be in [0, 274877906944], got 274877906945");
    EXPECT_ERROR("base: {schedule: {cyclic_warmup: 9223372036854775807}}\n", ":1:34:",
                 "key 'schedule.cyclic_warmup' must be in [0, 274877906944]");
    /* a grid value to blame: the run that asks for too much is named */
    EXPECT_ERROR("grid:\n  train.epochs: [1, 1e300]\n", ":2:21: in run 'epochs=1e+300': key 'train.epochs' asks for more");
    EXPECT_ERROR("base: {train: {epochs: 1e12}}\ngrid:\n  train.batch_size: [65536, 16]\n",
                 ":3:29: in run 'batch_size=16': key 'train.epochs' asks for more");
}


/* Issue 12 item 7: the experiment's name becomes the results file's name
 * (RESULTS/NAME.h5), the exported tables' and figures' names, and text in
 * gnuplot and shell commands. It is held to the run names' characters. */
static void test_experiment_name(void) {
    static const char *const bad[] = {
        "name: ../../x\n",          /* the results file outside --results */
        "name: a/b\n",              /* a file that can never be created */
        "name: it's\n",             /* breaks gnuplot's quoting */
        "name: \"a\\nb\"\n",          /* a newline in a file name */
        "name: $(touch pwned)\n",   /* odd directories when it reaches a shell */
        "name: \"`id`\"\n",
        "name: a b\n",
        "name: .hidden\n",
        "name: -rf\n",
        "name: ..\n",
        "name: \"x\\ty\"\n",
        "name: caf\xc3\xa9\n",       /* UTF-8: fine in YAML, not in this name */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT_ERROR(bad[i], ":1:7: key 'name' '",
                     "' may use only letters, digits and the characters _ . + = -, and must not start with '.' or "
                     "'-' (it names the results file and the figures)");
    EXPECT_ERROR("name: ../../x\n", FILE_NAME ":1:7: key 'name' '../../x' may use only");
    EXPECT_ERROR("name: \"a\\nb\"\n", FILE_NAME ":1:7: key 'name' 'a\\nb' may use only");
    /* the names the shipped experiments and the tests use, and every allowed character */
    static const char *const good[] = {"quick_ablation_cycles", "fmnist_cyclebnn_5ep", "table2_imagenet", "x",
                                       "cli_grid", "e2e_cifar", "A.b+c=d-e_9", "_x", "9"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char doc[128];
        snprintf(doc, sizeof doc, "name: %s\n", good[i]);
        ExperimentConfig e;
        if (!PARSE_OK(&e, doc)) {
            CHECK(!strcmp(e.name, good[i]) && !strcmp(e.runs[0].name, good[i]), "name %s", e.name);
            experiment_free(&e);
        }
    }
    /* the name taken from the file name when name: is absent obeys the same rule */
    static const char *const bad_paths[] = {"dir/it's.yaml", "dir/my exp.yaml", "dir/-x.yaml", "dir/.hidden.yaml",
                                            "dir/$(x).yml"};
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
        ExperimentConfig e;
        int rc = experiment_parse(&e, "base: {}\n", 9, bad_paths[i], err, sizeof err);
        char want[256];
        snprintf(want, sizeof want, "%s:1:1: the experiment name from the file name '", bad_paths[i]);
        CHECK(rc == -1 && !strncmp(err, want, strlen(want)) && strstr(err, "may use only") &&
                  strstr(err, ": set name:") && !strchr(err, '\n'),
              "%s: [%s]", bad_paths[i], rc ? err : "(parsed)");
        if (rc == 0) experiment_free(&e);
        /* and name: makes such a file usable */
        rc = experiment_parse(&e, "name: ok\n", 9, bad_paths[i], err, sizeof err);
        CHECK(rc == 0, "%s with name: [%s]", bad_paths[i], err);
        if (rc == 0) experiment_free(&e);
    }
    /* run names built from grid values: every character a runs: name may not
     * use becomes '_' (they name HDF5 groups and export files, and reach
     * progress lines and figure titles) */
    ExperimentConfig e;
    if (!PARSE_OK(&e, "name: g\ngrid:\n  data.path: [\"a b\", \"it's\", \"x\\ny\", \"$(rm -rf)\", \"c,d\", \"/p/q\", "
                      "\"\xc3\xa9\", \"ok.1+2=3-4\"]\n")) {
        static const char *const want[] = {"path=a_b",   "path=it_s", "path=x_y",  "path=__rm_-rf_",
                                           "path=c_d",   "path=_p_q", "path=__",   "path=ok.1+2=3-4"};
        CHECK(e.n_runs == 8, "%d runs", e.n_runs);
        for (int i = 0; i < e.n_runs && i < 8; i++) {
            CHECK(!strcmp(e.runs[i].name, want[i]), "run %d named [%s], want [%s]", i, e.runs[i].name, want[i]);
            CHECK(!strcmp(e.runs[i].c.data_path, (const char *[]){"a b", "it's", "x\ny", "$(rm -rf)", "c,d", "/p/q",
                                                                  "\xc3\xa9", "ok.1+2=3-4"}[i]),
                  "run %d keeps its value verbatim: [%s]", i, e.runs[i].c.data_path);
        }
        experiment_free(&e);
    }
    /* values that differ only in such characters would share a name */
    EXPECT_ERROR("grid:\n  data.path: [\"a b\", \"a'b\"]\n", ":2:22: two runs would both be named 'path=a_b'",
                 "every character but letters, digits and _ . + = - becomes '_'");
}

/* Issue 12 item 13: a syntax error anywhere in the file is reported as
 * such, with libyaml's position and a plain word on the likely cause, before
 * anything the broken syntax produced is interpreted. A flow mapping that
 * lost its '}' used to read as {lr: '0.002 train'} and be reported as "key
 * 'optim.lr' expects a number, got '0.002 train'". */
static void test_syntax_first(void) {
    EXPECT_ERROR("base:\n  optim: {name: adamw, lr: 0.002\n  train: {iterations: 10}\n",
                 FILE_NAME ":3:8: YAML syntax error: did not find expected ',' or '}' (while parsing a flow mapping at "
                           "line 2, column 10): a '{' without its '}', or a ',' missing between two entries");
    /* the same at the end of the file, and a semantic error before the syntax error does not win */
    EXPECT_ERROR("base:\n  optim: {lr: abc}\n  train: {iterations: 10\n",
                 ":4:1: YAML syntax error: did not find expected ',' or '}'");
    EXPECT_ERROR("name: bad name\nbase: {optim: {lr: 1}\n", ":3:1: YAML syntax error");
    /* a missing ']' */
    EXPECT_ERROR("base:\n  precision: {schedule: cyclic, bits: [2, 6, grad_bits: 8}\n",
                 ":2:58: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 2, "
                 "column 39): a '[' without its ']', or a ',' missing between two values");
    EXPECT_ERROR("grid:\n  precision.cycles: [1, 2\nbase: {}\n",
                 ":3:5: YAML syntax error: did not find expected ',' or ']'", "a '[' without its ']'");
    /* tabs */
    EXPECT_ERROR("base:\n\toptim: {lr: 0.1}\n", ":2:1: YAML syntax error: found character that cannot start any token",
                 "): YAML indents with spaces, not tabs");
    EXPECT_ERROR("base:\n  optim:\n    lr: 0.1\n  \tname: sgd\n", ":4:3: YAML syntax error:",
                 "YAML indents with spaces, not tabs");
    /* an unclosed quote, a line indented wrongly, a ': ' inside a value */
    EXPECT_ERROR("base:\n  data: {path: \"abc}\n", ":3:1: YAML syntax error: found unexpected end of stream",
                 "a quoted value without its closing quote");
    EXPECT_ERROR("base:\n  optim:\n    lr: 0.1\n   name: sgd\n", ":4:4: YAML syntax error: did not find expected key",
                 "a line indented less or more than the keys beside it");
    EXPECT_ERROR("base:\n  optim: lr: 0.1\n", ":2:12: YAML syntax error: mapping values are not allowed in this context",
                 "quote it");
    /* not syntax errors, but the same family: clear and one line */
    EXPECT_ERROR("base:\n  optim: {lr: 0.1}\n  optim: {lr: 0.2}\n", ":3:3: duplicate key 'optim' (first given at line 2");
    EXPECT_ERROR("base:\n  optim:\n    lr:\n", ":3:8: key 'optim.lr' expects a number, got an empty value");
    EXPECT_ERROR("base:\n  optim: {lr}\n", ":2:13: key 'optim.lr' expects a number, got an empty value");
    EXPECT_ERROR("base:\n  optim\n", ":2:3: key 'base' expects a mapping", "got the scalar 'optim'");
}

/* Every file in tests/configs/bad/ starts with "# expect: LINE:COL: text":
 * loading it must fail with "<path>:LINE:COL: " followed by a message that
 * contains text. */
static void test_bad_files(void) {
    const char *root = getenv("CBNN_SOURCE_ROOT");
    CHECK(root != NULL, "CBNN_SOURCE_ROOT is not set");
    if (!root) return;
    char pattern[1024];
    snprintf(pattern, sizeof pattern, "%s/tests/configs/bad/*.yaml", root);
    glob_t g;
    size_t n = glob(pattern, 0, NULL, &g) == 0 ? g.gl_pathc : 0;
    CHECK(n >= 22, "%zu bad experiment files match %s (expected at least 22)", n, pattern);
    for (size_t i = 0; i < n; i++) {
        const char *path = g.gl_pathv[i];
        char first[512] = "";
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(first, sizeof first, f)) first[0] = 0;
            fclose(f);
        }
        first[strcspn(first, "\n")] = 0;
        int line = 0, col = 0, skip = 0;
        if (sscanf(first, "# expect: %d:%d: %n", &line, &col, &skip) != 2 || !skip || !first[skip]) {
            CHECK(0, "%s: the first line must be '# expect: LINE:COL: message', got [%s]", path, first);
            continue;
        }
        ExperimentConfig e;
        int rc = experiment_load(&e, path, err, sizeof err);
        char want[1200];
        snprintf(want, sizeof want, "%s:%d:%d: ", path, line, col);
        CHECK(rc == -1 && !strncmp(err, want, strlen(want)) && strstr(err + strlen(want), first + skip) &&
                  !strchr(err, '\n'),
              "%s\n  got      [%s]\n  expected [%s%s]", path, rc ? err : "(parsed)", want, first + skip);
        if (rc == 0) experiment_free(&e);
    }
    printf("bad experiment files: %zu checked\n", n);
    if (n) globfree(&g);
}

/* every experiment shipped in experiments/ and experiments/quick/ parses */
static void test_shipped_files(void) {
    const char *root = getenv("CBNN_SOURCE_ROOT");
    if (!root) return; /* reported by test_bad_files */
    static const char *const dirs[] = {"experiments/*.yaml", "experiments/quick/*.yaml"};
    size_t total = 0;
    for (size_t d = 0; d < 2; d++) {
        char pattern[1024];
        snprintf(pattern, sizeof pattern, "%s/%s", root, dirs[d]);
        glob_t g;
        if (glob(pattern, 0, NULL, &g) != 0) continue; /* none (yet) */
        for (size_t i = 0; i < g.gl_pathc; i++) {
            ExperimentConfig e;
            int rc = experiment_load(&e, g.gl_pathv[i], err, sizeof err);
            CHECK(rc == 0, "shipped experiment %s does not parse: %s", g.gl_pathv[i], err);
            if (rc == 0) {
                CHECK(e.n_runs >= 1 && e.runs[0].name[0], "%s: no runs", g.gl_pathv[i]);
                experiment_free(&e);
            }
            total++;
        }
        globfree(&g);
    }
    CHECK(total >= 1, "no experiment files found under %s/experiments", root);
    printf("shipped experiment files: %zu parsed\n", total);
}

/* ---------------------------------------------------------------- the detector's keys (issue 14) */

/* a list field: n numbers equal to want, the count right, the unused tail 0
 * (configs compare with memcmp) */
static int list_is(const double *v, int n, const double *want, int nwant) {
    if (n != nwant) return 0;
    for (int i = 0; i < CFG_LIST_MAX; i++)
        if (i < n ? v[i] != want[i] : v[i] != 0 || signbit(v[i])) return 0;
    return 1;
}
#define LIST_IS(v, n, ...) \
    list_is(v, n, (const double[]){__VA_ARGS__}, (int)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double)))

static void test_detect_defaults(void) {
    RunConfig d;
    config_defaults(&d);
    CHECK(d.width == 64 && d.min_size == 600 && d.det_flip == 1 && d.train_difficult == 1 && d.max_gt_boxes == 20 &&
              d.synth_images == 800,
          "model/data detection defaults");
    CHECK(d.rpn_conv == RPN_CONV_BIDET && LIST_IS(d.anchor_scales, d.n_anchor_scales, 8, 16, 32) &&
              LIST_IS(d.anchor_ratios, d.n_anchor_ratios, 0.5, 1, 2),
          "anchors %d %d", d.n_anchor_scales, d.n_anchor_ratios);
    double none[CFG_LIST_MAX] = {0};
    CHECK(d.n_step_epochs == 0 && !memcmp(d.step_epochs, none, sizeof none), "step_epochs default []");
    CHECK(d.rpn_pos_iou == 0.7 && d.rpn_neg_iou == 0.3 && d.rpn_batch == 256 && d.rpn_fg_fraction == 0.5,
          "rpn targets");
    CHECK(d.pre_nms_train == 12000 && d.post_nms_train == 2000 && d.pre_nms_test == 6000 && d.post_nms_test == 300 &&
              d.rpn_nms == 0.7 && d.proposal_min_size == 0,
          "proposals");
    CHECK(d.rois_per_image == 256 && d.roi_fg_fraction == 0.25 && d.roi_fg_iou == 0.5 && d.roi_bg_hi == 0.5 &&
              d.roi_bg_lo == 0 && d.roi_aligned == 0 && d.pool_size == 7,
          "roi sampling");
    CHECK(d.rpn_sigma == 3 && d.rcnn_sigma == 1 && d.sample_sigma == 0.001 && d.box_noise == DET_NOISE_ALWAYS &&
              d.rpn_weight == DET_RPN_WEIGHT_LAST_IMAGE && d.head_prior_zero == 1 && d.nms_ge == 0 &&
              d.delta_clamp == 0,
          "losses");
    CHECK(d.ib_rpn_prior == 0.01 && d.ib_rpn_reg == 0.5 && d.ib_head_prior == 0.05 && d.ib_head_reg == 0.02 &&
              d.ib_start == DET_IB_FIRST_DECAY && d.head_prior_score == 0.01,
          "IB terms");
    CHECK(d.test_nms == 0.3 && d.test_score == 0 && d.max_per_image == 100 && d.backbone_init[0] == 0, "test");
    /* the values tasks/detect.h gives its BoxNoise (restated in config.h) */
    CHECK(DET_NOISE_ALWAYS == 0 && DET_NOISE_TRAIN == 1 && DET_NOISE_OFF == 2 && DET_RPN_WEIGHT_LAST_IMAGE == 0 &&
              DET_RPN_WEIGHT_PER_IMAGE == 1 && DET_IB_FIRST_DECAY == 0 && DET_IB_ALWAYS == 1 && DET_IB_NEVER == 2,
          "detection enum values");
    /* the YAML of the defaults: the new keys in their groups, lists in flow style */
    char *y = config_to_yaml(&d);
    CHECK(y && strstr(y, "\n  model:\n    arch: cifar_resnet20\n    conv: fp32\n    fp32_conv: native\n    width: 64\n  binary:\n"),
          "model.fp32_conv and model.width after model.conv:\n%s", y ? y : "");
    CHECK(y && strstr(y, "\n    loader_workers: 0\n    min_size: 600\n    flip: true\n    train_difficult: true\n"
                         "    max_gt_boxes: 20\n    synth_images: 800\n  optim:\n"),
          "data keys:\n%s", y ? y : "");
    CHECK(y && strstr(y, "\n    cyclic_warmup: 0\n    step_epochs: []\n  precision:\n"), "step_epochs:\n%s", y ? y : "");
    CHECK(y && strstr(y, "\n    threads: 0\n    shards: 1\n    memory: fast\n  detect:\n    rpn_conv: bidet\n    anchor_scales: [8, 16, 32]\n"
                         "    anchor_ratios: [0.5, 1, 2]\n    rpn_pos_iou: 0.7\n"),
          "detect group:\n%s", y ? y : "");
    CHECK(y && strstr(y, "\n    box_noise: always\n    rpn_weight: last_image\n") &&
              strstr(y, "\n    ib_start: first_decay\n") && strstr(y, "\n    backbone_init: \"\"\n") &&
              !strcmp(y + strlen(y) - strlen("    backbone_init: \"\"\n"), "    backbone_init: \"\"\n"),
          "detect enums and the last key:\n%s", y ? y : "");
    free(y);
}

/* A detector config written every way the YAML allows: flow and block lists,
 * dotted keys; every detection key away from its default. */
static const char DETECT_BLOCK[] =
    "name: det\n"
    "base:\n"
    "  model: {arch: frcnn_resnet18, conv: cyclebnn, width: 16}\n"
    "  data:\n"
    "    dataset: synth_voc\n"
    "    min_size: 192\n"
    "    flip: false\n"
    "    train_difficult: no\n"
    "    max_gt_boxes: 7\n"
    "    synth_images: 1_000\n"
    "  schedule:\n"
    "    lr: step\n"
    "    gamma: 0.5\n"
    "    step_epochs:\n"
    "      - 6\n"
    "      - 12.5\n"
    "      - 18\n"
    "      - 24\n"
    "  detect:\n"
    "    rpn_conv: fp32\n"
    "    anchor_scales: [2, 4, 8]\n"
    "    anchor_ratios:\n"
    "      - 0.25\n"
    "      - 1\n"
    "    rpn_pos_iou: 0.6\n"
    "    rpn_neg_iou: 0.6\n"
    "    rpn_batch: 64\n"
    "    rpn_fg_fraction: 1\n"
    "    pre_nms_train: 500\n"
    "    post_nms_train: 500\n"
    "    pre_nms_test: 400\n"
    "    post_nms_test: 50\n"
    "    rpn_nms: 0.65\n"
    "    proposal_min_size: 16\n"
    "    rois_per_image: 64\n"
    "    roi_fg_fraction: 0.5\n"
    "    roi_fg_iou: 0.6\n"
    "    roi_bg_hi: 0.6\n"
    "    roi_bg_lo: 0.1\n"
    "    roi_aligned: true\n"
    "    pool_size: 14\n"
    "    rpn_sigma: 1.5\n"
    "    rcnn_sigma: 2\n"
    "    sample_sigma: 0\n"
    "    box_noise: off\n"
    "    rpn_weight: per_image\n"
    "    head_prior_zero: false\n"
    "    nms_ge: true\n"
    "    delta_clamp: 4.135\n"
    "    ib_rpn_prior: 0\n"
    "    ib_rpn_reg: 1e-3\n"
    "    ib_head_prior: 100\n"
    "    ib_head_reg: 0.125\n"
    "    ib_start: never\n"
    "    head_prior_score: 0.5\n"
    "    test_nms: 0.45\n"
    "    test_score: 0.05\n"
    "    max_per_image: 0\n"
    "    backbone_init: \"RESULTS/table2_imagenet.h5:fp32,seed=1\"\n";

static const char DETECT_FLOW[] =
    "{name: det, base: {model: {arch: frcnn_resnet18, conv: cyclebnn}, model.width: 16, "
    "data: {dataset: synth_voc, min_size: 192, flip: off, train_difficult: false, max_gt_boxes: 7, synth_images: 1000}, "
    "schedule: {lr: step, gamma: .5, step_epochs: [6, 1.25e1, 18, +24]}, "
    "detect: {rpn_conv: 'fp32', anchor_scales: [2.0, 4, 8e0], anchor_ratios: [.25, 1], rpn_pos_iou: 0.6, "
    "rpn_neg_iou: 0.6, rpn_batch: 64, rpn_fg_fraction: 1.0, pre_nms_train: 500, post_nms_train: 500, "
    "pre_nms_test: 400, post_nms_test: 50, rpn_nms: 0.65, proposal_min_size: 16, rois_per_image: 64, "
    "roi_fg_fraction: 0.5, roi_fg_iou: 0.6, roi_bg_hi: 0.6, roi_bg_lo: 0.1, roi_aligned: yes, pool_size: 14, "
    "rpn_sigma: 1.5, rcnn_sigma: 2, sample_sigma: 0.0, box_noise: \"off\", rpn_weight: per_image, "
    "head_prior_zero: no, nms_ge: on, delta_clamp: 4.135, ib_rpn_prior: 0, ib_rpn_reg: 0.001, "
    "ib_head_prior: 1e2, ib_head_reg: 0.125, ib_start: never, head_prior_score: 0.5, test_nms: 0.45, "
    "test_score: 0.05, max_per_image: 0}, detect.backbone_init: 'RESULTS/table2_imagenet.h5:fp32,seed=1'}}\n";

static void check_detect_full(const RunConfig *c) {
    CHECK(!strcmp(c->arch, "frcnn_resnet18") && c->conv == CONV_BINARY && c->width == 16, "model");
    CHECK(!strcmp(c->dataset, "synth_voc") && c->min_size == 192 && c->det_flip == 0 && c->train_difficult == 0 &&
              c->max_gt_boxes == 7 && c->synth_images == 1000,
          "data");
    CHECK(c->lr_schedule == LR_STEP && c->gamma == 0.5 && c->step_size == 0 &&
              LIST_IS(c->step_epochs, c->n_step_epochs, 6, 12.5, 18, 24),
          "schedule: %d step epochs", c->n_step_epochs);
    CHECK(c->rpn_conv == RPN_CONV_FP32 && LIST_IS(c->anchor_scales, c->n_anchor_scales, 2, 4, 8) &&
              LIST_IS(c->anchor_ratios, c->n_anchor_ratios, 0.25, 1),
          "anchors");
    CHECK(c->rpn_pos_iou == 0.6 && c->rpn_neg_iou == 0.6 && c->rpn_batch == 64 && c->rpn_fg_fraction == 1 &&
              c->pre_nms_train == 500 && c->post_nms_train == 500 && c->pre_nms_test == 400 &&
              c->post_nms_test == 50 && c->rpn_nms == 0.65 && c->proposal_min_size == 16,
          "rpn");
    CHECK(c->rois_per_image == 64 && c->roi_fg_fraction == 0.5 && c->roi_fg_iou == 0.6 && c->roi_bg_hi == 0.6 &&
              c->roi_bg_lo == 0.1 && c->roi_aligned == 1 && c->pool_size == 14,
          "rois");
    CHECK(c->rpn_sigma == 1.5 && c->rcnn_sigma == 2 && c->sample_sigma == 0 && c->box_noise == DET_NOISE_OFF &&
              c->rpn_weight == DET_RPN_WEIGHT_PER_IMAGE && c->head_prior_zero == 0 && c->nms_ge == 1 &&
              c->delta_clamp == 4.135,
          "losses");
    CHECK(c->ib_rpn_prior == 0 && c->ib_rpn_reg == 1e-3 && c->ib_head_prior == 100 && c->ib_head_reg == 0.125 &&
              c->ib_start == DET_IB_NEVER && c->head_prior_score == 0.5,
          "IB");
    CHECK(c->test_nms == 0.45 && c->test_score == 0.05 && c->max_per_image == 0 &&
              !strcmp(c->backbone_init, "RESULTS/table2_imagenet.h5:fp32,seed=1"),
          "test [%s]", c->backbone_init);
}

static void test_detect_full(void) {
    ExperimentConfig a, b;
    if (PARSE_OK(&a, DETECT_BLOCK)) return;
    check_detect_full(&a.base);
    CHECK_ROUND_TRIP(&a.base);
    if (!PARSE_OK(&b, DETECT_FLOW)) {
        check_detect_full(&b.base);
        CHECK(!memcmp(&a.base, &b.base, sizeof a.base), "flow and block style differ");
        experiment_free(&b);
    }
    char *y = config_to_yaml(&a.base);
    CHECK(y && strstr(y, "\n    step_epochs: [6, 12.5, 18, 24]\n") &&
              strstr(y, "\n    anchor_scales: [2, 4, 8]\n    anchor_ratios: [0.25, 1]\n") &&
              strstr(y, "\n    box_noise: \"off\"\n") &&
              strstr(y, "\n    backbone_init: \"RESULTS/table2_imagenet.h5:fp32,seed=1\"\n"),
          "to_yaml:\n%s", y ? y : "");
    free(y);
    experiment_free(&a);
    /* the largest list, and [] where it is allowed */
    if (!PARSE_OK(&a, "base:\n  detect: {anchor_scales: [1, 2, 3, 4, 5, 6, 7, 8], anchor_ratios: [1e-3, 1000]}\n"
                      "  schedule: {step_epochs: []}\n")) {
        CHECK(LIST_IS(a.base.anchor_scales, a.base.n_anchor_scales, 1, 2, 3, 4, 5, 6, 7, 8) &&
                  LIST_IS(a.base.anchor_ratios, a.base.n_anchor_ratios, 1e-3, 1000) && a.base.n_step_epochs == 0,
              "8 elements, range ends");
        CHECK_ROUND_TRIP(&a.base);
        experiment_free(&a);
    }
    /* a shorter list over a longer one leaves nothing of the longer one behind */
    RunConfig d;
    config_defaults(&d);
    if (!PARSE_OK(&a, "base: {detect: {anchor_scales: [4]}}\n")) {
        d.anchor_scales[0] = 4;
        d.anchor_scales[1] = d.anchor_scales[2] = 0;
        d.n_anchor_scales = 1;
        CHECK(!memcmp(&a.base, &d, sizeof d), "one-element list differs from the defaults elsewhere");
        experiment_free(&a);
    }
}

static void test_detect_lists(void) {
    /* too many, wrong element type, out of range, nested, empty, scalar: each at its own position */
    EXPECT_ERROR("base: {detect: {anchor_scales: [1, 2, 3, 4, 5, 6, 7, 8, 9]}}\n",
                 FILE_NAME ":1:57: key 'detect.anchor_scales' takes at most 8 numbers, got more");
    EXPECT_ERROR("base:\n  detect:\n    anchor_ratios:\n      - 1\n      - abc\n",
                 FILE_NAME ":5:9: key 'detect.anchor_ratios' expects a number, got 'abc'");
    EXPECT_ERROR("base: {detect: {anchor_scales: [8, \"16\"]}}\n", ":1:36:",
                 "key 'detect.anchor_scales' expects a number, got the quoted string \"16\"");
    EXPECT_ERROR("base: {detect: {anchor_scales: [8, true]}}\n", ":1:36:", "expects a number, got 'true'");
    EXPECT_ERROR("base: {detect: {anchor_scales: [8, .inf]}}\n", ":1:36:", "expects a finite number, got '.inf'");
    EXPECT_ERROR("base: {detect: {anchor_scales: [8, 0]}}\n",
                 FILE_NAME ":1:36: key 'detect.anchor_scales' must be in (0, 10000], got 0");
    EXPECT_ERROR("base: {detect: {anchor_scales: [-8]}}\n", ":1:33:", "must be in (0, 10000], got -8");
    EXPECT_ERROR("base: {detect: {anchor_ratios: [0.5, 1001]}}\n", ":1:38:",
                 "'detect.anchor_ratios' must be in (0, 1000], got 1001");
    EXPECT_ERROR("base: {schedule: {step_epochs: [1e10]}}\n", ":1:33:",
                 "'schedule.step_epochs' must be in (0, 1000000000], got 1e10");
    EXPECT_ERROR("base: {detect: {anchor_scales: [8, [16]]}}\n", ":1:36:",
                 "key 'detect.anchor_scales' expects a list of numbers, got a sequence in the list");
    EXPECT_ERROR("base: {detect: {anchor_scales: [{a: 1}]}}\n", ":1:33:", "got a mapping in the list");
    EXPECT_ERROR("base: {detect: {anchor_scales: {a: 1}}}\n", ":1:32:",
                 "key 'detect.anchor_scales' expects a list of numbers, got a mapping");
    EXPECT_ERROR("base: {detect: {anchor_scales: []}}\n",
                 FILE_NAME ":1:32: key 'detect.anchor_scales' expects a list of 1 to 8 numbers, got an empty list");
    EXPECT_ERROR("base:\n  detect:\n    anchor_ratios: []\n", ":3:20:", "'detect.anchor_ratios' expects a list of 1 to 8");
    EXPECT_ERROR("base: {detect: {anchor_scales: 8}}\n",
                 FILE_NAME ":1:32: key 'detect.anchor_scales' expects a list of numbers, got '8' (write [8] for a "
                           "list of one)");
    EXPECT_ERROR("base: {detect: {anchor_scales: '8'}}\n", ":1:32:", "got the quoted string '8' (write [8]");
    EXPECT_ERROR("base:\n  detect:\n    anchor_scales:\n", ":3:19:",
                 "key 'detect.anchor_scales' expects a list of numbers, got an empty value");
    EXPECT_ERROR("base:\n  schedule:\n    step_epochs:\n", ":3:17:",
                 "key 'schedule.step_epochs' expects a list of numbers, got an empty value (write [] for none)");
    EXPECT_ERROR("base: {detect: {anchor_scales: &a [8], anchor_ratios: *a}}\n", ":1:55:", "aliases are not supported (*a)");
    EXPECT_ERROR("base: {detect: {anchor_scales: [8, *a]}}\n", ":1:36:", "aliases are not supported (*a)");
    EXPECT_ERROR("base:\n  detect: {anchor_scales: [8]}\n  detect.anchor_scales: [4]\n",
                 ":3:3: duplicate key 'detect.anchor_scales' (first given at line 2, column 12)");
    /* step_epochs: strictly increasing, pointed at the element that is not */
    EXPECT_ERROR("base: {schedule: {step_epochs: [6, 12, 12]}}\n",
                 FILE_NAME ":1:40: key 'schedule.step_epochs' must be strictly increasing, got 12 after 12");
    EXPECT_ERROR("base:\n  schedule:\n    step_epochs:\n      - 6\n      - 5.5\n", ":5:9:",
                 "must be strictly increasing, got 5.5 after 6");
    /* the other list keys need no order */
    ExperimentConfig e;
    if (!PARSE_OK(&e, "base: {detect: {anchor_scales: [32, 8, 8]}}\n")) {
        CHECK(LIST_IS(e.base.anchor_scales, e.base.n_anchor_scales, 32, 8, 8), "unordered scales kept");
        experiment_free(&e);
    }
    /* a typo near a list key, and the keys of detect: listed in full */
    EXPECT_ERROR("base: {detect: {anchor_scale: [8]}}\n", ":1:17:", "did you mean 'detect.anchor_scales'?");
    EXPECT_ERROR("base: {detect: {zzzzzzzzzz: 1}}\n", ":1:17:",
                 "(allowed under 'base.detect': rpn_conv, anchor_scales, anchor_ratios, rpn_pos_iou,",
                 ", test_nms, test_score, max_per_image, bn_gamma_init, backbone_init)");
    EXPECT_ERROR("base: {detect: 3}\n", ":1:16:", "key 'detect' expects a mapping (with keys rpn_conv,",
                 ", backbone_init), got the scalar '3'");
}

/* lists in runs: and grid: carry their count with their numbers */
static void test_detect_runs_grid(void) {
    ExperimentConfig e;
    if (!PARSE_OK(&e, "name: r\nbase: {detect: {anchor_scales: [8, 16, 32]}}\n"
                      "runs:\n  small: {detect.anchor_scales: [2, 4]}\n  same: {}\n  one:\n    detect:\n"
                      "      anchor_scales:\n        - 64\n")) {
        CHECK_NAMES(&e, "small", "same", "one");
        if (e.n_runs == 3)
            CHECK(LIST_IS(e.runs[0].c.anchor_scales, e.runs[0].c.n_anchor_scales, 2, 4) &&
                      LIST_IS(e.runs[1].c.anchor_scales, e.runs[1].c.n_anchor_scales, 8, 16, 32) &&
                      LIST_IS(e.runs[2].c.anchor_scales, e.runs[2].c.n_anchor_scales, 64),
                  "runs: list overrides");
        experiment_free(&e);
    }
    /* a grid over a list key: a list of lists, named with '_' between the numbers */
    if (!PARSE_OK(&e, "name: g\ngrid:\n  detect.anchor_scales: [[8, 16, 32], [4, 8], [0.5]]\n"
                      "  detect.anchor_ratios:\n    - [1]\n    -\n      - 0.5\n      - 2\n")) {
        CHECK_NAMES(&e, "anchor_scales=8_16_32,anchor_ratios=1", "anchor_scales=8_16_32,anchor_ratios=0.5_2",
                    "anchor_scales=4_8,anchor_ratios=1", "anchor_scales=4_8,anchor_ratios=0.5_2",
                    "anchor_scales=0.5,anchor_ratios=1", "anchor_scales=0.5,anchor_ratios=0.5_2");
        if (e.n_runs == 6) {
            CHECK(LIST_IS(e.runs[3].c.anchor_scales, e.runs[3].c.n_anchor_scales, 4, 8) &&
                      LIST_IS(e.runs[3].c.anchor_ratios, e.runs[3].c.n_anchor_ratios, 0.5, 2) &&
                      LIST_IS(e.runs[4].c.anchor_scales, e.runs[4].c.n_anchor_scales, 0.5) &&
                      LIST_IS(e.runs[4].c.anchor_ratios, e.runs[4].c.n_anchor_ratios, 1),
                  "grid list values");
            CHECK_ROUND_TRIP(&e.runs[3].c);
        }
        experiment_free(&e);
    }
    if (!PARSE_OK(&e, "name: s\nbase: {model.arch: frcnn_resnet18, data.dataset: voc, schedule.lr: step}\n"
                      "grid:\n  schedule.step_epochs: [[6], [6, 12]]\n")) {
        CHECK_NAMES(&e, "step_epochs=6", "step_epochs=6_12");
        if (e.n_runs == 2)
            CHECK(LIST_IS(e.runs[0].c.step_epochs, e.runs[0].c.n_step_epochs, 6) &&
                      LIST_IS(e.runs[1].c.step_epochs, e.runs[1].c.n_step_epochs, 6, 12),
                  "step_epochs axis");
        experiment_free(&e);
    }
    /* [] as a grid value: named "none" (a step schedule without decays is refused later, per run) */
    EXPECT_ERROR("grid:\n  schedule.step_epochs: [[], []]\n", ":2:30:",
                 "grid axis 'schedule.step_epochs' has the value none twice (first at line 2, column 26)");
    EXPECT_ERROR("base: {schedule.lr: step}\ngrid:\n  schedule.step_epochs: [[]]\n", ":1:8:",
                 "in run 'step_epochs=none': key 'schedule.step_size' must be > 0 when schedule.lr is 'step'");
    /* [8, 16, 32] as an axis is one value written without its brackets */
    EXPECT_ERROR("grid:\n  detect.anchor_scales: [8, 16, 32]\n",
                 FILE_NAME ":2:26: grid axis 'detect.anchor_scales' takes lists as its values, e.g. [[8, 16, 32], "
                           "[4, 8, 16]]; got the scalar '8'");
    EXPECT_ERROR("grid:\n  detect.anchor_scales: [[8, 16], [8, 16.0]]\n", ":2:35:",
                 "grid axis 'detect.anchor_scales' has the value 8_16 twice (first at line 2, column 26)");
    EXPECT_ERROR("grid:\n  detect.anchor_scales: [[8], [9, 0]]\n", ":2:35:", "must be in (0, 10000], got 0");
    EXPECT_ERROR("grid:\n  detect.anchor_scales: [[8], []]\n", ":2:31:", "expects a list of 1 to 8 numbers, got an empty list");
    /* a run that overrides a list key the grid sets is refused like any other */
    EXPECT_ERROR("grid:\n  detect.anchor_scales: [[8]]\nruns:\n  a: {detect.anchor_scales: [4]}\n", ":4:7:",
                 "run 'a' sets key 'detect.anchor_scales', which a grid axis");
}

/* the constraints between the detector's keys, each at the key the file set */
static void test_detect_cross(void) {
    ExperimentConfig e;
    EXPECT_ERROR("base:\n  detect:\n    rpn_neg_iou: 0.8\n",
                 FILE_NAME ":3:5: key 'detect.rpn_neg_iou' must be <= detect.rpn_pos_iou (an anchor cannot be "
                           "background and foreground at once), got 0.8 > 0.7");
    EXPECT_ERROR("base: {detect: {rpn_pos_iou: 0.2}}\n", ":1:17:", "'detect.rpn_neg_iou' must be <= detect.rpn_pos_iou",
                 "got 0.3 > 0.2");
    if (!PARSE_OK(&e, "base: {detect: {rpn_pos_iou: 0.3}}\n")) experiment_free(&e); /* equal is allowed */
    EXPECT_ERROR("base:\n  detect:\n    pre_nms_train: 1000\n",
                 FILE_NAME ":3:5: key 'detect.pre_nms_train' must be >= detect.post_nms_train (NMS keeps at most "
                           "that many of the top pre-NMS proposals), got 1000 < 2000");
    EXPECT_ERROR("base: {detect: {post_nms_test: 6001}}\n", ":1:17:",
                 "key 'detect.pre_nms_test' must be >= detect.post_nms_test", "got 6000 < 6001");
    if (!PARSE_OK(&e, "base: {detect: {post_nms_test: 6000, pre_nms_train: 2000}}\n")) experiment_free(&e);
    EXPECT_ERROR("base:\n  detect:\n    roi_bg_lo: 0.5\n",
                 FILE_NAME ":3:5: key 'detect.roi_bg_lo' must be < detect.roi_bg_hi (background RoIs have IoU in "
                           "[lo, hi)), got 0.5 >= 0.5");
    EXPECT_ERROR("base: {detect: {roi_bg_hi: 0.1, roi_bg_lo: 0.2}}\n", ":1:33:", "got 0.2 >= 0.1");
    EXPECT_ERROR("base:\n  detect:\n    roi_bg_hi: 0.6\n",
                 FILE_NAME ":3:5: key 'detect.roi_bg_hi' must be <= detect.roi_fg_iou (a RoI cannot be background "
                           "and foreground at once), got 0.6 > 0.5");
    EXPECT_ERROR("base: {detect: {roi_fg_iou: 0.4}}\n", ":1:17:", "'detect.roi_bg_hi' must be <= detect.roi_fg_iou",
                 "got 0.5 > 0.4");
    if (!PARSE_OK(&e, "base: {detect: {roi_bg_lo: 0.1, roi_bg_hi: 0.4, roi_fg_iou: 0.4}}\n")) experiment_free(&e);
    /* a detector with a classification dataset, and the reverse */
    EXPECT_ERROR("base:\n  model:\n    arch: frcnn_resnet18\n",
                 FILE_NAME ":3:5: key 'model.arch' frcnn_resnet18 is a detector and needs a detection dataset "
                           "(data.dataset voc or synth_voc), got data.dataset 'fashion_mnist' (a detector with a "
                           "classification dataset)");
    EXPECT_ERROR("base: {data: {dataset: cifar10}, model: {arch: frcnn_resnet18}}\n", ":1:42:",
                 "got data.dataset 'cifar10' (a detector with a classification dataset)");
    EXPECT_ERROR("base:\n  data:\n    dataset: voc\n",
                 FILE_NAME ":3:5: key 'data.dataset' voc is a detection dataset and needs model.arch frcnn_resnet18, "
                           "got model.arch 'cifar_resnet20' (a classifier with a detection dataset)");
    EXPECT_ERROR("base: {model.arch: vgg_small, data.dataset: synth_voc}\n", ":1:31:",
                 "'data.dataset' synth_voc is a detection dataset", "got model.arch 'vgg_small'");
    EXPECT_ERROR("base: {model.arch: frcnn_resnet18}\ngrid:\n  data.dataset: [voc, imagenet]\n", ":3:23:",
                 "in run 'dataset=imagenet': key 'model.arch' frcnn_resnet18 is a detector");
    static const char *const ok[] = {"base: {model.arch: frcnn_resnet18, data.dataset: voc}\n",
                                     "base: {model.arch: frcnn_resnet18, data.dataset: synth_voc}\n"};
    for (int i = 0; i < 2; i++)
        if (!PARSE_OK(&e, ok[i])) experiment_free(&e);
    /* schedule.step_epochs: the step schedule's decays, read by the detector */
    static const char det[] = "base:\n  model: {arch: frcnn_resnet18}\n  data: {dataset: voc}\n";
    char doc[512];
    snprintf(doc, sizeof doc, "%s  schedule: {lr: step, step_epochs: [6, 12, 18, 24]}\n", det);
    if (!PARSE_OK(&e, doc)) {
        CHECK(LIST_IS(e.base.step_epochs, e.base.n_step_epochs, 6, 12, 18, 24) && e.base.step_size == 0,
              "the detector's recipe");
        experiment_free(&e);
    }
    snprintf(doc, sizeof doc, "%s  schedule: {step_epochs: [6]}\n", det);
    EXPECT_ERROR(doc, FILE_NAME ":4:14: key 'schedule.step_epochs' needs schedule.lr 'step' (it lists that "
                                "schedule's decays), got 'cosine'");
    snprintf(doc, sizeof doc, "%s  schedule: {lr: step, step_size: 100, step_epochs: [6]}\n", det);
    EXPECT_ERROR(doc, ":4:40: key 'schedule.step_epochs' and schedule.step_size (100) both place the decays");
    EXPECT_ERROR("base: {schedule: {lr: step, step_epochs: [6]}}\n",
                 FILE_NAME ":1:29: key 'schedule.step_epochs' is read by the detector only (model.arch "
                           "frcnn_resnet18), got model.arch 'cifar_resnet20'");
    /* a step schedule without either is the old message, unchanged */
    snprintf(doc, sizeof doc, "%s  schedule: {lr: step, step_epochs: []}\n", det);
    EXPECT_ERROR(doc, ":4:14: key 'schedule.step_size' must be > 0 when schedule.lr is 'step', got 0");
    /* the ranges that carry the issue's other constraints: fractions in (0, 1], a feature map of 2x2 or more */
    EXPECT_ERROR("base: {detect: {rpn_fg_fraction: 0}}\n", ":1:34:", "'detect.rpn_fg_fraction' must be in (0, 1], got 0");
    EXPECT_ERROR("base: {detect: {roi_fg_fraction: 1.5}}\n", ":1:34:", "must be in (0, 1], got 1.5");
    EXPECT_ERROR("base: {detect: {rpn_neg_iou: 1}}\n", ":1:30:", "'detect.rpn_neg_iou' must be in [0, 1), got 1");
    EXPECT_ERROR("base: {data: {min_size: 31}}\n", ":1:25:", "'data.min_size' must be in [32, 4096], got 31");
    EXPECT_ERROR("base: {model: {width: 3}}\n", ":1:23:", "'model.width' must be in [4, 512], got 3");
    EXPECT_ERROR("base: {data: {synth_images: 7}}\n", ":1:29:", "'data.synth_images' must be in [8, 1000000], got 7");
    EXPECT_ERROR("base: {detect: {rpn_conv: binary}}\n", ":1:27:",
                 "'detect.rpn_conv' must be one of bidet, cyclebnn, fp32; got 'binary'");
    EXPECT_ERROR("base: {detect: {ib_start: first}}\n", ":1:27:",
                 "must be one of first_decay, always, never; got 'first'");
}

/* random valid detector configurations survive config_to_yaml -> parse bit for bit */
static void test_detect_random_round_trips(void) {
    for (int t = 0; t < 200; t++) {
        Rng r = rng_stream(8, RNG_TEST, 2, (uint64_t)t);
        RunConfig c;
        config_defaults(&c);
        memset(c.arch, 0, sizeof c.arch);
        strcpy(c.arch, "frcnn_resnet18");
        memset(c.dataset, 0, sizeof c.dataset);
        strcpy(c.dataset, rng_below(&r, 2) ? "voc" : "synth_voc");
        c.width = 4 + (int)rng_below(&r, 509);
        c.min_size = 32 + (int)rng_below(&r, 4065);
        c.det_flip = (int)rng_below(&r, 2);
        c.train_difficult = (int)rng_below(&r, 2);
        c.max_gt_boxes = 1 + (int)rng_below(&r, 1000);
        c.synth_images = 8 + (long)rng_below(&r, 999993);
        c.rpn_conv = (RpnConvKind)rng_below(&r, 3);
        /* lists: lengths 1..8 (0..8 for step_epochs), the tail left 0 */
        memset(c.anchor_scales, 0, sizeof c.anchor_scales);
        memset(c.anchor_ratios, 0, sizeof c.anchor_ratios);
        memset(c.step_epochs, 0, sizeof c.step_epochs);
        c.n_anchor_scales = 1 + (int)rng_below(&r, 8);
        c.n_anchor_ratios = 1 + (int)rng_below(&r, 8);
        c.n_step_epochs = (int)rng_below(&r, 9);
        for (int i = 0; i < c.n_anchor_scales; i++) c.anchor_scales[i] = 1e4 * (1 - rng_uniform(&r));
        for (int i = 0; i < c.n_anchor_ratios; i++) c.anchor_ratios[i] = exp(-6.9 + 13.8 * rng_uniform(&r));
        double ep = 0;
        for (int i = 0; i < c.n_step_epochs; i++) c.step_epochs[i] = ep += 1e-3 + 30 * rng_uniform(&r);
        if (c.n_step_epochs) c.lr_schedule = LR_STEP, c.step_size = 0;
        c.rpn_pos_iou = 1 - rng_uniform(&r);
        c.rpn_neg_iou = c.rpn_pos_iou * rng_uniform(&r);
        if (c.rpn_neg_iou >= 1) c.rpn_neg_iou = 0;
        c.rpn_batch = 1 + (int)rng_below(&r, 100000);
        c.rpn_fg_fraction = 1 - rng_uniform(&r);
        c.post_nms_train = 1 + (int)rng_below(&r, 1000000);
        c.pre_nms_train = c.post_nms_train + (int)rng_below(&r, (uint64_t)(1000001 - c.post_nms_train));
        c.post_nms_test = 1 + (int)rng_below(&r, 1000000);
        c.pre_nms_test = c.post_nms_test + (int)rng_below(&r, (uint64_t)(1000001 - c.post_nms_test));
        c.rpn_nms = 1 - rng_uniform(&r);
        c.proposal_min_size = 1e4 * rng_uniform(&r);
        c.rois_per_image = 1 + (int)rng_below(&r, 100000);
        c.roi_fg_fraction = 1 - rng_uniform(&r);
        c.roi_fg_iou = 1 - rng_uniform(&r);
        c.roi_bg_hi = c.roi_fg_iou * (1 - rng_uniform(&r));
        c.roi_bg_lo = c.roi_bg_hi * rng_uniform(&r);
        if (!(c.roi_bg_lo < c.roi_bg_hi)) c.roi_bg_lo = 0, c.roi_bg_hi = c.roi_fg_iou;
        c.roi_aligned = (int)rng_below(&r, 2);
        c.pool_size = 1 + (int)rng_below(&r, 64);
        c.rpn_sigma = 100 * (1 - rng_uniform(&r));
        c.rcnn_sigma = 100 * (1 - rng_uniform(&r));
        c.sample_sigma = t % 5 ? 10 * rng_uniform(&r) : 0;
        c.box_noise = (DetBoxNoise)rng_below(&r, 3);
        c.rpn_weight = (DetRpnWeight)rng_below(&r, 2);
        c.head_prior_zero = (int)rng_below(&r, 2);
        c.nms_ge = (int)rng_below(&r, 2);
        c.delta_clamp = 20 * rng_uniform(&r);
        c.ib_rpn_prior = 100 * rng_uniform(&r);
        c.ib_rpn_reg = 100 * rng_uniform(&r);
        c.ib_head_prior = 100 * rng_uniform(&r);
        c.ib_head_reg = t % 7 ? 100 * rng_uniform(&r) : 4.9406564584124654e-324;
        c.ib_start = (DetIbStart)rng_below(&r, 3);
        c.head_prior_score = rng_uniform(&r);
        c.test_nms = 1 - rng_uniform(&r);
        c.test_score = rng_uniform(&r);
        c.max_per_image = (int)rng_below(&r, 100001);
        memset(c.backbone_init, 0, sizeof c.backbone_init);
        if (t % 3) snprintf(c.backbone_init, sizeof c.backbone_init, "RESULTS/x %d.h5:run,seed=%d", t, t % 4);
        CHECK_ROUND_TRIP(&c);
    }
}

static const char FUZZ_DOC[] =
    "# fuzz seed document\n"
    "name: fuzz\n"
    "description: 'a \"quoted\" description: with colon'\n"
    "base:\n"
    "  model: {arch: cifar_resnet8, conv: fp32}\n"
    "  data:\n"
    "    path: \"/tmp/x y\"\n"
    "    train_subset: 1_000\n"
    "    augment: {flip: yes, crop_pad: 2}\n"
    "  optim:\n"
    "    name: sgd\n"
    "    lr: 0.05\n"
    "    nesterov: false\n"
    "  optim.eps: 1e-7\n"
    "  schedule: {lr: step, step_size: 10, gamma: 0.5}\n"
    "  precision: {schedule: cyclic, bits: [2, 6], grad_bits: 8, cycles: 2}\n"
    "  binary:\n"
    "    act_grad: ste\n"
    "    clamp_tau: 0.95\n"
    "  train:\n"
    "    iterations: 100\n"
    "    seed: 42   # trailing comment\n";

/* grid:, seeds: and runs: together, with a bits axis, so that mutations
 * reach the expansion (3 x 3 x 2 x 2 x 2 = 72 runs) */
static const char FUZZ_GRID_DOC[] =
    "name: fuzzgrid\n"
    "seeds: [1, 2]\n"
    "base:\n"
    "  model: {arch: cifar_resnet8, conv: cyclebnn}\n"
    "  precision: {schedule: cyclic, bits: [2, 6], cycles: 4}\n"
    "  train: {iterations: 200, seed: 5}\n"
    "runs:\n"
    "  cyclic: {}\n"
    "  full: {precision.schedule: full}\n"
    "  sgd:\n"
    "    optim: {name: sgd, lr: 0.05}\n"
    "grid:\n"
    "  precision.bits: [[2, 6], [3, 5], 8]\n"
    "  optim.weight_decay: [0, 1e-4]\n"
    "  data.augment.flip:\n"
    "    - true\n"
    "    - false\n";

/* the detector's keys: lists in flow and block style, a list axis and list
 * overrides, so that mutations reach parse_dlist_from and the list
 * printing (2 runs x 2 x 2 = 8 runs) */
static const char FUZZ_DET_DOC[] =
    "name: fuzzdet\n"
    "base:\n"
    "  model: {arch: frcnn_resnet18, width: 16}\n"
    "  data: {dataset: synth_voc, min_size: 192, synth_images: 800}\n"
    "  schedule:\n"
    "    lr: step\n"
    "    step_epochs:\n"
    "      - 6\n"
    "      - 12.5\n"
    "  detect:\n"
    "    anchor_scales: [2, 4, 8]\n"
    "    anchor_ratios: [0.5, 1, 2]\n"
    "    rpn_conv: cyclebnn\n"
    "    pre_nms_train: 3000\n"
    "    roi_bg_lo: 0.1\n"
    "runs:\n"
    "  a: {}\n"
    "  b: {detect.anchor_ratios: [1], schedule: {step_epochs: [3]}}\n"
    "grid:\n"
    "  detect.anchor_scales: [[8, 16, 32], [1e1]]\n"
    "  detect.box_noise: [always, 'off']\n";

/* 1 when libyaml parses the whole text without an error */
static int yaml_reads(const char *text, size_t len) {
    yaml_parser_t y;
    if (!yaml_parser_initialize(&y)) return 1;
    yaml_parser_set_input_string(&y, (const unsigned char *)text, len);
    int ok = 1;
    for (int done = 0; !done;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&y, &ev)) {
            ok = 0;
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&y);
    return ok;
}

/* Any input: 0 (and then a config that round-trips, with sane runs) or -1
 * with a one-line message naming the file. ASan/LSan watch for the rest. */
static int fuzz_one(const char *text, size_t len) {
    ExperimentConfig e;
    char msg[512];
    int rc = experiment_parse(&e, text, len, "fuzz.yaml", msg, sizeof msg);
    if (rc == 0) {
        int ok = e.yaml_text && !memcmp(e.yaml_text, text, len) && e.name[0];
        char *y = config_to_yaml(&e.base);
        ExperimentConfig back;
        int rc2 = y ? experiment_parse(&back, y, strlen(y), "fuzz-back.yaml", msg, sizeof msg) : -1;
        ok = ok && rc2 == 0 && !memcmp(&back.base, &e.base, sizeof e.base);
        if (rc2 == 0) experiment_free(&back);
        free(y);
        /* the runs: 1..4096 of them, named, and the last one round-trips too */
        ok = ok && e.runs && e.n_runs >= 1 && e.n_runs <= CFG_MAX_RUNS && e.n_axes >= 0 && e.n_axes <= CFG_MAX_AXES;
        for (int i = 0; ok && i < e.n_runs; i++)
            ok = e.runs[i].name[0] && memchr(e.runs[i].name, 0, CFG_RUN_NAME) != NULL;
        /* names safe for files, HDF5 groups and scripts (issue 12 item 7): the
         * experiment's, and every run's, whose parts the ',' separates (a
         * runs: name may start with '-' or '.'; "." and ".." are refused) */
        ok = ok && safe_name(e.name);
        for (int i = 0; ok && i < e.n_runs; i++)
            ok = strspn(e.runs[i].name, RUN_NAME_CHARS ",") == strlen(e.runs[i].name) &&
                 strcmp(e.runs[i].name, ".") && strcmp(e.runs[i].name, "..");
        if (ok) {
            const RunConfig *last = &e.runs[e.n_runs - 1].c;
            y = config_to_yaml(last);
            rc2 = y ? experiment_parse(&back, y, strlen(y), "fuzz-back.yaml", msg, sizeof msg) : -1;
            ok = rc2 == 0 && !memcmp(&back.base, last, sizeof *last);
            if (rc2 == 0) experiment_free(&back);
            free(y);
        }
        experiment_free(&e);
        return ok ? 0 : 1;
    }
    if (rc != -1) return 2;
    if (strncmp(msg, "fuzz.yaml:", 10) || strlen(msg) <= 10 || strchr(msg, '\n')) return 3;
    /* a text libyaml cannot read is reported as a syntax error, whatever
     * came before the error in it (issue 12 item 13) */
    if (!yaml_reads(text, len) && !strstr(msg, ": YAML syntax error: ") && !strstr(msg, ": the file is UTF-16")) return 4;
    return 0;
}

/* Mutations of one valid document `doc`; `stream` keeps the seeds apart. */
static void fuzz_doc(const char *doc, uint64_t stream, int iters) {
    size_t n0 = strlen(doc);
    char *buf = malloc(4 * n0 + 64);
    int bad = 0, accepted = 0;

    /* every truncation, parsed from an exactly-sized heap copy so that ASan
     * catches any read past len */
    for (size_t len = 0; len <= n0; len++) {
        char *t = malloc(len ? len : 1);
        memcpy(t, doc, len);
        int r = fuzz_one(t, len);
        if (r) {
            bad++;
            fprintf(stderr, "truncation at %zu: failure %d\n", len, r);
        }
        free(t);
    }

    static const char special[] = ":-{}[],&*!|>'\"%@`#?~\t\n \r\\.0123456789e_";
    for (int it = 0; it < iters; it++) {
        Rng r = rng_stream(12345, RNG_TEST, stream, (uint64_t)it);
        size_t len = n0;
        memcpy(buf, doc, n0);
        int nmut = 1 + (int)rng_below(&r, 4);
        for (int m = 0; m < nmut; m++) {
            size_t pos = len ? (size_t)rng_below(&r, len + 1) : 0;
            switch (rng_below(&r, 6)) {
            case 0: /* flip a byte to anything */
                if (pos < len) buf[pos] = (char)rng_below(&r, 256);
                break;
            case 1: { /* delete a short span */
                size_t k = 1 + (size_t)rng_below(&r, 8);
                if (pos + k > len) k = len - pos;
                memmove(buf + pos, buf + pos + k, len - pos - k);
                len -= k;
                break;
            }
            case 2:
            case 3: /* insert a YAML-significant character */
                if (len < 4 * n0) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = special[rng_below(&r, sizeof special - 1)];
                    len++;
                }
                break;
            case 4: { /* duplicate a span (repeats keys, nests structure) */
                size_t k = 1 + (size_t)rng_below(&r, 40);
                if (pos + k > len) k = len - pos;
                if (len + k <= 4 * n0) {
                    memmove(buf + pos + k, buf + pos, len - pos);
                    len += k;
                }
                break;
            }
            case 5: /* truncate */
                len = pos;
                break;
            }
        }
        char *t = malloc(len ? len : 1);
        memcpy(t, buf, len);
        int res = fuzz_one(t, len);
        if (res) {
            bad++;
            if (bad < 5) fprintf(stderr, "fuzz iteration %d: failure %d on\n%.*s\n", it, res, (int)len, t);
        }
        ExperimentConfig e;
        char msg[256];
        if (experiment_parse(&e, t, len, "x", msg, sizeof msg) == 0) {
            accepted++;
            experiment_free(&e);
        }
        free(t);
    }
    CHECK(bad == 0, "%d fuzz inputs misbehaved", bad);
    /* the mutations should leave a fair share of documents valid, else the
     * success path is not being fuzzed */
    CHECK(accepted > iters / 100, "only %d of %d mutated documents parsed", accepted, iters);
    printf("fuzz (stream %llu): %zu truncations, %d mutated documents, %d accepted\n", (unsigned long long)stream,
           n0 + 1, iters, accepted);
    free(buf);
}

static void test_fuzz(void) {
    fuzz_doc(FUZZ_DOC, 2, 6000);
    fuzz_doc(FULL_FLOW, 3, 3000);
    fuzz_doc(FULL_BLOCK, 4, 3000);
    fuzz_doc(FUZZ_GRID_DOC, 5, 6000);
    fuzz_doc(FUZZ_DET_DOC, 6, 4000);
}

int main(void) {
    test_defaults();
    test_full();
    test_bits();
    test_random_round_trips();
    test_enum_keys();
    test_errors();
    test_files();
    test_grid_two_axes();
    test_grid_seeds_only();
    test_grid_runs_only();
    test_grid_combined();
    test_grid_values();
    test_grid_single_run();
    test_grid_cap();
    test_derived_ranges();
    test_experiment_name();
    test_syntax_first();
    test_bad_files();
    test_detect_defaults();
    test_detect_full();
    test_detect_lists();
    test_detect_runs_grid();
    test_detect_cross();
    test_detect_random_round_trips();
    test_shipped_files();
    test_fuzz();
    return tu_finish("config");
}
