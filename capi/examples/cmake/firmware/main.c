/* The C firmware: checks every case of the suite through the C API (the
   model's kind chooses tg_log_density, tg_detector_score or tg_decode),
   bit for bit against the host's outputs; replays decoders' prior samples
   with tg_sample; counts a detector's alarms with tg_detector_is_anomaly;
   learns a recipe case's detector on the device (tg_learner_*) and scores
   with it; and checks that corrupted model bytes and misuse are error codes.
   Prints one line per check and returns 0 only if all pass. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cases.h"
#include "tinygen.h"

#if defined(__arm__) && !defined(__linux__)
#include "platform.h"
#define TG_BARE_METAL 1
#endif

#ifndef TG_SCRATCH_BYTES
#define TG_SCRATCH_BYTES 8192
#endif
#ifndef TG_MAX_OUTPUT
#define TG_MAX_OUTPUT 1024
#endif
#ifndef TG_CORRUPT_BYTES
#define TG_CORRUPT_BYTES 16384
#endif
/* The on-device learner's buffers: state (doubles), stored features and
   calibration scores (floats) on the stack while it learns, the learned
   file (bytes) in a static page. TG_NO_LEARNER leaves the learner out
   (recipe cases then fail to open). */
#ifndef TG_LEARN_STATE
#define TG_LEARN_STATE 400
#endif
#ifndef TG_LEARN_FEATURES
#define TG_LEARN_FEATURES 600
#endif
#ifndef TG_LEARN_SCORES
#define TG_LEARN_SCORES 128
#endif
#ifndef TG_LEARN_FILE
#define TG_LEARN_FILE 12288
#endif

_Static_assert(sizeof(tg_model) == TG_MODEL_SIZE, "tg_model is TG_MODEL_SIZE bytes");

static tg_model model;
static uint32_t scratch[TG_SCRATCH_BYTES / 4];
static float out[TG_MAX_OUTPUT];
static uint32_t corrupt[TG_CORRUPT_BYTES / 4 + 1];
#ifndef TG_NO_LEARNER
static uint32_t learned_file[TG_LEARN_FILE / 4];
#endif

static uint32_t bits(float v) {
  uint32_t b;
  memcpy(&b, &v, sizeof b);
  return b;
}

/* One row through the call the model's kind takes. */
static tg_status eval(const tg_model *m, const float *x, size_t n, float *y, size_t n_out) {
  switch (tg_model_kind(m)) {
    case TG_KIND_GMM:
    case TG_KIND_KDE:
      return tg_log_density(m, x, n, y);
    case TG_KIND_DETECTOR:
      return tg_detector_score(m, x, n, y);
    default:
      return tg_decode(m, x, n, y, n_out, scratch, sizeof scratch);
  }
}

static int check_samples(const struct tg_case *c) {
  tg_rng rng;
  int differ = 0;
  tg_rng_seed(&rng, 0);
  for (size_t s = 0; s < c->n_samples; s++) {
    tg_status st = tg_sample(&model, &rng, out, c->out_dim, scratch, sizeof scratch);
    if (st != TG_OK) {
      printf("case %s: sampling failed: %s\n", c->name, tg_strerror(st));
      return 1;
    }
    for (size_t j = 0; j < c->out_dim; j++) differ += bits(out[j]) != c->samples[s * c->out_dim + j];
  }
  printf("case %s: %u samples from the prior, %d values differ from the host\n", c->name,
         (unsigned)c->n_samples, differ);
  return differ;
}

static void report_alarms(const struct tg_case *c) {
  unsigned hits = 0, anomalies = 0, false_alarms = 0, normal = 0;
  for (size_t r = 0; r < c->n_labels; r++) {
    bool alarm = true;
    tg_detector_is_anomaly(&model, c->inputs + c->starts[r], c->dim, &alarm);
    if (c->labels[r]) {
      anomalies++;
      hits += alarm;
    } else {
      normal++;
      false_alarms += alarm;
    }
  }
  printf("case %s: detector flagged %u of %u anomalous windows, %u false alarms in %u normal windows\n",
         c->name, hits, anomalies, false_alarms, normal);
}

#ifndef TG_NO_LEARNER
/* Learns a recipe case's detector from the case's first inputs (the
   recipe's learning and calibration inputs) into `learned_file`: its
   length into *len, the inputs taken into *taken. The learner and its
   working memory live on this function's frame, gone before the learned
   file is opened (the Cortex-M0 has 16 KiB of RAM). */
static __attribute__((noinline)) tg_status learn_into_page(const struct tg_case *c,
                                                            const tg_learner_memory *need,
                                                            size_t *taken, size_t *len) {
  tg_learner learner;
  double state[TG_LEARN_STATE];
  float features[TG_LEARN_FEATURES], scores[TG_LEARN_SCORES];
  tg_status st = tg_learner_start(&learner, c->model, c->model_len, state, need->state, features,
                                  need->features, scores, need->scores, (uint8_t *)learned_file,
                                  need->file);
  tg_progress progress = TG_PROGRESS_LEARNING;
  *taken = 0;
  for (size_t r = 0; st == TG_OK && progress != TG_PROGRESS_DONE && r < c->rows; r++, (*taken)++)
    st = tg_learner_observe(&learner, c->inputs + c->starts[r], c->dim, &progress, NULL);
  const uint8_t *file = NULL;
  if (st == TG_OK) st = tg_learner_file(&learner, &file, len);
  if (st == TG_OK && file != (const uint8_t *)learned_file) {
    printf("case %s: the learned file is not where the learner wrote it\n", c->name);
    return TG_ERR_INTERNAL;
  }
  return st;
}

/* A recipe case: learns its detector on the device, reports the learned
   threshold and file CRC, and opens the learned file into `model`. */
static tg_status learn_case(const struct tg_case *c, const tg_learner_memory *need) {
  if (need->input_dim != c->dim || need->state > TG_LEARN_STATE ||
      need->features > TG_LEARN_FEATURES || need->scores > TG_LEARN_SCORES ||
      need->file > sizeof learned_file) {
    printf("case %s: the recipe needs %u doubles, %u + %u floats and %u bytes for inputs of %u; the firmware has %u, %u + %u and %u for %u\n",
           c->name, (unsigned)need->state, (unsigned)need->features, (unsigned)need->scores,
           (unsigned)need->file, (unsigned)need->input_dim, (unsigned)TG_LEARN_STATE,
           (unsigned)TG_LEARN_FEATURES, (unsigned)TG_LEARN_SCORES, (unsigned)sizeof learned_file,
           (unsigned)c->dim);
    return TG_ERR_SCRATCH_TOO_SMALL;
  }
  /* The learned file goes to the start of an erased flash page, and is
     opened from there as after a reset: tg_file_len finds its length. */
  memset(learned_file, 0xFF, sizeof learned_file);
  size_t taken = 0, len = 0, found = 0;
  tg_status st = learn_into_page(c, need, &taken, &len);
  if (st == TG_OK) st = tg_file_len((const uint8_t *)learned_file, sizeof learned_file, &found);
  if (st == TG_OK && found != len) {
    printf("case %s: the page holds a file of %u bytes, the learner wrote %u\n", c->name,
           (unsigned)found, (unsigned)len);
    return TG_ERR_INTERNAL;
  }
  if (st == TG_OK) st = tg_model_open(&model, (const uint8_t *)learned_file, found);
  float threshold = 0;
  if (st == TG_OK) st = tg_detector_threshold(&model, &threshold);
  if (st != TG_OK) {
    printf("case %s: learning failed: %s\n", c->name, tg_strerror(st));
    return st;
  }
  /* The CRC is the file's last four bytes, little-endian. */
  const uint8_t *file = (const uint8_t *)learned_file;
  uint32_t crc = (uint32_t)file[len - 4] | (uint32_t)file[len - 3] << 8 |
                 (uint32_t)file[len - 2] << 16 | (uint32_t)file[len - 1] << 24;
  printf("case %s: learned on the device from %u inputs, threshold bits 0x%08lx, file crc 0x%08lx\n",
         c->name, (unsigned)taken, (unsigned long)bits(threshold), (unsigned long)crc);
  return TG_OK;
}

/* Whether a case's model is a recipe (learned on the device). */
static bool is_recipe(const struct tg_case *c, tg_learner_memory *need) {
  return tg_learner_sizes(c->model, c->model_len, need) == TG_OK;
}
#else
static bool is_recipe(const struct tg_case *c, tg_learner_memory *need) {
  (void)c;
  (void)need;
  return false;
}
static tg_status learn_case(const struct tg_case *c, const tg_learner_memory *need) {
  (void)c;
  (void)need;
  return TG_ERR_WRONG_KIND;
}
#endif

#ifdef TG_BARE_METAL
/* The stack's peak over the run, kept across the repaints that measure
   one call, and the most any tg_model_open took. */
static unsigned peak_stack, open_stack;

static void repaint_stack(void) {
  unsigned p = tg_platform_stack_peak();
  if (p > peak_stack) peak_stack = p;
  tg_platform_paint_stack();
}
#endif

/* tg_model_open, measuring its stack on the device. */
static tg_status open_case(const struct tg_case *c) {
#ifdef TG_BARE_METAL
  repaint_stack();
#endif
  tg_status opened = tg_model_open(&model, c->model, c->model_len);
#ifdef TG_BARE_METAL
  unsigned used = tg_platform_stack_peak();
  if (used > open_stack) open_stack = used;
  printf("case %s: stack %u bytes deep in tg_model_open\n", c->name, used);
  repaint_stack();
#endif
  return opened;
}

static int check_case(const struct tg_case *c) {
  tg_learner_memory need;
  if (is_recipe(c, &need)) {
    if (learn_case(c, &need) != TG_OK) return 1;
  } else {
    tg_status opened = open_case(c);
    if (opened != TG_OK) {
      printf("case %s: model rejected: %s\n", c->name, tg_strerror(opened));
      return 1;
    }
  }
  tg_status st;
  if (tg_input_dim(&model) != c->dim || tg_output_dim(&model) != c->out_dim ||
      c->out_dim > TG_MAX_OUTPUT || tg_scratch_size(&model) > sizeof scratch) {
    printf("case %s: model maps %u -> %u values and needs %u scratch bytes; the case %u -> %u, the firmware has %u bytes and %u outputs\n",
           c->name, (unsigned)tg_input_dim(&model), (unsigned)tg_output_dim(&model),
           (unsigned)tg_scratch_size(&model), (unsigned)c->dim, (unsigned)c->out_dim,
           (unsigned)sizeof scratch, (unsigned)TG_MAX_OUTPUT);
    return 1;
  }
  unsigned exact = 0, mismatches = 0;
  for (size_t r = 0; r < c->rows; r++) {
    st = eval(&model, c->inputs + c->starts[r], c->dim, out, c->out_dim);
    if (st != TG_OK) {
      printf("case %s: row %u failed: %s\n", c->name, (unsigned)r, tg_strerror(st));
      mismatches++;
      continue;
    }
    for (size_t j = 0; j < c->out_dim; j++) {
      uint32_t want = c->expected[r * c->out_dim + j];
      if (bits(out[j]) == want) {
        exact++;
      } else {
        if (mismatches < 3)
          printf("case %s: row %u value %u: 0x%08lx, host 0x%08lx\n", c->name, (unsigned)r,
                 (unsigned)j, (unsigned long)bits(out[j]), (unsigned long)want);
        mismatches++;
      }
    }
  }
  printf("case %s: %u values, %u bit-exact, %u mismatches\n", c->name,
         (unsigned)(c->rows * c->out_dim), exact, mismatches);
  int failures = mismatches != 0;
  tg_kind kind = tg_model_kind(&model);
  if (c->n_samples > 0 &&
      (kind == TG_KIND_DECODER || kind == TG_KIND_DECODER_INT8 || kind == TG_KIND_DIFFUSION))
    failures += check_samples(c);
  if (c->n_labels > 0 && kind == TG_KIND_DETECTOR) report_alarms(c);
  return failures;
}

/* Expects `got` to be `want`; prints the check and returns 1 if it is not. */
static int expect(const char *what, tg_status got, tg_status want) {
  if (got == want) {
    printf("%s rejected: %s\n", what, tg_strerror(got));
    return 0;
  }
  printf("%s: got \"%s\", expected \"%s\"\n", what, tg_strerror(got), tg_strerror(want));
  return 1;
}

/* The runtime's golden one-dimensional standard normal
   (runtime/tests/golden/gmm.tgm, 40 bytes), corrupted when no case's model
   fits the buffer (an image holding one large case on the Cortex-M0). */
static const uint32_t golden_gmm[10] = {0x004d4754, 0x00010001, 0x0be4268f, 0x00000014,
                                        0x00020101, 0x0c000002, 0xbf6b3f8e, 0x3f800000,
                                        0x00000000, 0x81123af5};

/* Corrupted copies of a model in RAM, each rejected with its own code. */
static int check_corruption(const struct tg_case *c) {
  const uint8_t *bytes = c->model;
  size_t n = c->model_len;
  uint8_t *buf = (uint8_t *)corrupt;
  int failures = 0;
  if (n + 1 > sizeof corrupt) {
    bytes = (const uint8_t *)golden_gmm;
    n = sizeof golden_gmm;
  }
  memcpy(buf, bytes, n);
  buf[n / 2] ^= 0x10;
  failures += expect("corrupted model (one bit flipped)", tg_model_open(&model, buf, n), TG_ERR_CRC);
  memcpy(buf, bytes, n);
  buf[0] = 'X';
  failures += expect("corrupted model (bad magic)", tg_model_open(&model, buf, n), TG_ERR_BAD_MAGIC);
  memcpy(buf, bytes, n);
  failures += expect("corrupted model (truncated)", tg_model_open(&model, buf, n - 1), TG_ERR_LENGTH);
  memcpy(buf + 1, bytes, n);
  failures += expect("corrupted model (at an odd address)", tg_model_open(&model, buf + 1, n), TG_ERR_MISALIGNED);
  /* The failed opens left the model closed. */
  float y = 0;
  failures += expect("a closed model", tg_log_density(&model, &y, 1, &y), TG_ERR_NOT_OPEN);
  return failures;
}

/* Misuse of an open model: NULL pointers, wrong lengths and kinds. */
static int check_misuse(const struct tg_case *c) {
  int failures = 0;
  float y = 0;
  if (tg_model_open(&model, c->model, c->model_len) != TG_OK) return 1;
  failures += expect("a NULL model", tg_model_open(NULL, c->model, c->model_len), TG_ERR_NULL);
  failures += expect("NULL model bytes", tg_model_open(&model, NULL, c->model_len), TG_ERR_NULL);
  if (tg_model_open(&model, c->model, c->model_len) != TG_OK) return 1;
  failures += expect("a NULL input", eval(&model, NULL, c->dim, out, c->out_dim), TG_ERR_NULL);
  failures += expect("a short input", eval(&model, c->inputs, c->dim - 1, out, c->out_dim), TG_ERR_DIMENSION);
  tg_kind kind = tg_model_kind(&model);
  bool network = kind >= TG_KIND_DECODER;
  failures += expect("a call for another kind",
                     network ? tg_log_density(&model, c->inputs, c->dim, &y)
                             : tg_decode(&model, c->inputs, c->dim, out, 1, scratch, sizeof scratch),
                     TG_ERR_WRONG_KIND);
  if (network) {
    failures += expect("a short output", tg_decode(&model, c->inputs, c->dim, out, c->out_dim - 1, scratch, sizeof scratch), TG_ERR_DIMENSION);
    failures += expect("misaligned scratch", tg_decode(&model, c->inputs, c->dim, out, c->out_dim, (uint8_t *)scratch + 1, 64), TG_ERR_MISALIGNED);
  }
  return failures;
}

int main(void) {
  /* A static line buffer: newlib would take one from the heap. */
  static char line[128];
  setvbuf(stdout, line, _IOLBF, sizeof line);
  int failures = 0;
  printf("tinygen %s C API, tg_model %u bytes, %u cases\n", tg_version(), (unsigned)sizeof(tg_model),
         (unsigned)tg_case_count);
#ifdef TG_BARE_METAL
  tg_platform_paint_stack();
#endif
  const struct tg_case *smallest = NULL;
  for (size_t i = 0; i < tg_case_count; i++) {
    const struct tg_case *c = &tg_cases[i];
    failures += check_case(c);
    tg_learner_memory need;
    if (!is_recipe(c, &need) && (!smallest || c->model_len < smallest->model_len)) smallest = c;
  }
  if (smallest) {
    failures += check_corruption(smallest);
    failures += check_misuse(smallest);
  }
#ifdef TG_BARE_METAL
  repaint_stack();
  printf("c firmware: peak stack %u bytes (opening a model: %u at most)\n", peak_stack, open_stack);
#endif
  if (failures == 0) {
    printf("c firmware: all checks passed\n");
  } else {
    printf("c firmware: %d checks FAILED\n", failures);
  }
  return failures == 0 ? 0 : 1;
}
