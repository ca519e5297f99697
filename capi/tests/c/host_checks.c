/* The C API from C, on the host (gcc, -std=c11 -pedantic -Werror): every
   misuse a C caller can make is its status code, never a crash. Models
   come from headers that `tinygen export --format c`'s writer made from
   the runtime's golden files (gmm.h, kde.h, detector.h, decoder.h,
   encoder.h, decoder_int8.h, encoder_int8.h, and the on-device learner's
   recipe.h; see tests/tests/capi.rs).
   Prints each failed check and a count; exits 0 only if all pass. */
#include <math.h>
#include <stdalign.h>
#include <stdio.h>
#include <string.h>

#include "tinygen.h"

#include "decoder.h"
#include "decoder_int8.h"
#include "detector.h"
#include "encoder.h"
#include "encoder_int8.h"
#include "gmm.h"
#include "kde.h"
#include "recipe.h"
/* Twice: the headers have include guards. */
#include "gmm.h"

_Static_assert(sizeof(tg_model) == TG_MODEL_SIZE, "tg_model is TG_MODEL_SIZE bytes");
_Static_assert(alignof(tg_model) >= 8, "tg_model is 8-byte aligned");
_Static_assert(sizeof(tg_rng) == 16, "tg_rng holds xoshiro128++'s state");
_Static_assert(sizeof(tg_learner) == TG_LEARNER_SIZE, "tg_learner is TG_LEARNER_SIZE bytes");
_Static_assert(alignof(tg_learner) >= 8, "tg_learner is 8-byte aligned");

static int checks, failed;

#define CHECK(cond)                                                  \
  do {                                                               \
    checks++;                                                        \
    if (!(cond)) {                                                   \
      failed++;                                                      \
      printf("host_checks.c:%d: check failed: %s\n", __LINE__, #cond); \
    }                                                                \
  } while (0)
/* A call's status is `want`. */
#define EXPECT(call, want)                                                                 \
  do {                                                                                     \
    tg_status got_ = (call);                                                               \
    checks++;                                                                              \
    if (got_ != (want)) {                                                                  \
      failed++;                                                                            \
      printf("host_checks.c:%d: %s: got %d (%s), expected %s\n", __LINE__, #call, (int)got_, \
             tg_strerror(got_), #want);                                                    \
    }                                                                                      \
  } while (0)

static _Alignas(8) uint32_t scratch[4096];
static float in[1024], out[1024];

static void open_ok(tg_model *m, const uint8_t *bytes, size_t len, tg_kind kind) {
  EXPECT(tg_model_open(m, bytes, len), TG_OK);
  CHECK(tg_model_kind(m) == kind);
  CHECK(tg_input_dim(m) > 0 && tg_output_dim(m) > 0);
}

static void strerror_checks(void) {
  for (int i = 0; i <= TG_ERR_NOT_POSITIVE_DEFINITE; i++) {
    const char *s = tg_strerror(i);
    CHECK(s != NULL && s[0] != '\0');
    for (int j = 0; j < i; j++) CHECK(strcmp(s, tg_strerror(j)) != 0);
  }
  CHECK(strcmp(tg_strerror(TG_OK), "ok") == 0);
  CHECK(strcmp(tg_strerror(-1), "unknown tinygen status code") == 0);
  CHECK(strcmp(tg_strerror(1000), "unknown tinygen status code") == 0);
  CHECK(tg_version() != NULL && strchr(tg_version(), '.') != NULL);
}

static void open_checks(void) {
  tg_model m;
  static _Alignas(4) uint8_t copy[sizeof gmm + 8];
  EXPECT(tg_model_open(NULL, gmm, gmm_LEN), TG_ERR_NULL);
  EXPECT(tg_model_open(&m, NULL, gmm_LEN), TG_ERR_NULL);
  memcpy(copy + 1, gmm, gmm_LEN);
  EXPECT(tg_model_open(&m, copy + 1, gmm_LEN), TG_ERR_MISALIGNED);
  EXPECT(tg_model_open(&m, gmm, gmm_LEN - 1), TG_ERR_LENGTH);
  EXPECT(tg_model_open(&m, gmm, 8), TG_ERR_TOO_SHORT);
  memcpy(copy, gmm, gmm_LEN);
  copy[gmm_LEN / 2] ^= 1;
  EXPECT(tg_model_open(&m, copy, gmm_LEN), TG_ERR_CRC);
  memcpy(copy, gmm, gmm_LEN);
  copy[1] = 'X';
  EXPECT(tg_model_open(&m, copy, gmm_LEN), TG_ERR_BAD_MAGIC);
  /* Every failed open left `m` closed. */
  CHECK(tg_model_kind(&m) == TG_KIND_NONE);
  CHECK(tg_input_dim(&m) == 0 && tg_scratch_size(&m) == 0);
  EXPECT(tg_log_density(&m, in, 1, out), TG_ERR_NOT_OPEN);
  /* A zeroed tg_model was never opened; NULL models have no kind. */
  static tg_model zero;
  EXPECT(tg_log_density(&zero, in, 1, out), TG_ERR_NOT_OPEN);
  CHECK(tg_model_kind(NULL) == TG_KIND_NONE && tg_output_dim(NULL) == 0);
  EXPECT(tg_log_density(NULL, in, 1, out), TG_ERR_NULL);
  /* A tg_model may be copied. */
  tg_model a, b;
  open_ok(&a, gmm, gmm_LEN, TG_KIND_GMM);
  memcpy(&b, &a, sizeof a);
  float ya = 0, yb = 1;
  size_t n = tg_input_dim(&a);
  EXPECT(tg_log_density(&a, in, n, &ya), TG_OK);
  EXPECT(tg_log_density(&b, in, n, &yb), TG_OK);
  CHECK(memcmp(&ya, &yb, sizeof ya) == 0);
}

static void density_checks(void) {
  tg_model m, d;
  open_ok(&m, kde, kde_LEN, TG_KIND_KDE);
  open_ok(&d, detector, detector_LEN, TG_KIND_DETECTOR);
  size_t n = tg_input_dim(&m);
  float y = 0, score = 0, threshold = 0;
  bool alarm = false;
  EXPECT(tg_log_density(&m, in, n, &y), TG_OK);
  CHECK(isfinite(y));
  EXPECT(tg_log_density(&m, in, n + 1, &y), TG_ERR_DIMENSION);
  EXPECT(tg_log_density(&m, in, 0, &y), TG_ERR_DIMENSION);
  EXPECT(tg_log_density(&m, NULL, n, &y), TG_ERR_NULL);
  EXPECT(tg_log_density(&m, in, n, NULL), TG_ERR_NULL);
  EXPECT(tg_log_density(&m, (const float *)((const char *)in + 1), n, &y), TG_ERR_MISALIGNED);
  in[0] = NAN;
  EXPECT(tg_log_density(&m, in, n, &y), TG_ERR_NONFINITE_INPUT);
  in[0] = INFINITY;
  EXPECT(tg_detector_score(&d, in, tg_input_dim(&d), &score), TG_ERR_NONFINITE_INPUT);
  in[0] = 0;
  /* Detector calls on a density, network calls on a density. */
  EXPECT(tg_detector_score(&m, in, n, &score), TG_ERR_WRONG_KIND);
  EXPECT(tg_detector_is_anomaly(&m, in, n, &alarm), TG_ERR_WRONG_KIND);
  EXPECT(tg_detector_threshold(&m, &threshold), TG_ERR_WRONG_KIND);
  EXPECT(tg_decode(&m, in, n, out, 1, scratch, sizeof scratch), TG_ERR_WRONG_KIND);
  EXPECT(tg_input_quant(&m, &y, &(int32_t){0}), TG_ERR_WRONG_KIND);
  tg_rng rng;
  EXPECT(tg_rng_seed(&rng, 1), TG_OK);
  EXPECT(tg_sample(&m, &rng, out, 1, scratch, sizeof scratch), TG_ERR_WRONG_KIND);
  /* The detector: score, alarm and threshold agree; its density's
     log-density is finite (it is -score only without a neural part, which
     the golden detector has). */
  n = tg_input_dim(&d);
  EXPECT(tg_detector_score(&d, in, n, &score), TG_OK);
  EXPECT(tg_detector_threshold(&d, &threshold), TG_OK);
  EXPECT(tg_detector_is_anomaly(&d, in, n, &alarm), TG_OK);
  CHECK(alarm == (score >= threshold));
  EXPECT(tg_log_density(&d, in, n, &y), TG_OK);
  CHECK(isfinite(y) && isfinite(score));
  EXPECT(tg_detector_is_anomaly(&d, in, n, NULL), TG_ERR_NULL);
  EXPECT(tg_detector_score(&d, in, n - 1, &score), TG_ERR_DIMENSION);
  CHECK(tg_scratch_size(&d) == 0);
}

static void network_checks(const uint8_t *bytes, size_t len, tg_kind kind) {
  tg_model m;
  open_ok(&m, bytes, len, kind);
  size_t n_in = tg_input_dim(&m), n_out = tg_output_dim(&m), size = tg_scratch_size(&m);
  bool int8 = kind == TG_KIND_DECODER_INT8 || kind == TG_KIND_ENCODER_INT8;
  bool decoder = kind == TG_KIND_DECODER || kind == TG_KIND_DECODER_INT8;
  CHECK(size > 0 && size % 4 == 0 && size <= sizeof scratch);
  CHECK(tg_latent_dim(&m) == (decoder ? n_in : n_out));
  for (size_t i = 0; i < n_in; i++) in[i] = (float)i / 4.0f - 0.5f;
  EXPECT(tg_decode(&m, in, n_in, out, n_out, scratch, size), TG_OK);
  float first = out[0];
  EXPECT(tg_decode(&m, in, n_in, out, n_out - 1, scratch, size), TG_ERR_DIMENSION);
  EXPECT(tg_decode(&m, in, n_in + 1, out, n_out, scratch, size), TG_ERR_DIMENSION);
  EXPECT(tg_decode(&m, in, n_in, NULL, n_out, scratch, size), TG_ERR_NULL);
  EXPECT(tg_decode(&m, NULL, n_in, out, n_out, scratch, size), TG_ERR_NULL);
  EXPECT(tg_decode(&m, in, n_in, out, n_out, NULL, size), TG_ERR_NULL);
  EXPECT(tg_decode(&m, in, n_in, out, n_out, (char *)scratch + 2, size), TG_ERR_MISALIGNED);
  /* The output inside the input, or the scratch inside the output. */
  EXPECT(tg_decode(&m, in, n_in, in + 1, n_out, scratch, size), TG_ERR_OVERLAP);
  EXPECT(tg_decode(&m, in, n_in, (float *)scratch, n_out, scratch, size), TG_ERR_OVERLAP);
  EXPECT(tg_decode(&m, in, n_in, out, n_out, scratch, size), TG_OK);
  CHECK(memcmp(&first, &out[0], sizeof first) == 0);
  /* Density and detector calls on a network. */
  float y;
  EXPECT(tg_log_density(&m, in, n_in, &y), TG_ERR_WRONG_KIND);
  EXPECT(tg_detector_score(&m, in, n_in, &y), TG_ERR_WRONG_KIND);
  /* int8 tensors: only for int8 networks. */
  static int8_t qin[1024], qout[1024];
  float scale = 0;
  int32_t zero_point = 1000;
  if (int8) {
    EXPECT(tg_input_quant(&m, &scale, &zero_point), TG_OK);
    CHECK(scale > 0 && zero_point >= -128 && zero_point <= 127);
    EXPECT(tg_output_quant(&m, &scale, NULL), TG_ERR_NULL);
    EXPECT(tg_decode_i8(&m, qin, n_in, qout, n_out, scratch, size), TG_OK);
    EXPECT(tg_decode_i8(&m, qin, n_in, qout, n_out + 1, scratch, size), TG_ERR_DIMENSION);
    EXPECT(tg_decode_i8(&m, qin, n_in, qout, n_out, scratch, 0), TG_ERR_SCRATCH_TOO_SMALL);
  } else {
    EXPECT(tg_input_quant(&m, &scale, &zero_point), TG_ERR_WRONG_KIND);
    EXPECT(tg_decode_i8(&m, qin, n_in, qout, n_out, scratch, size), TG_ERR_WRONG_KIND);
  }
  /* Sampling: decoders only; a seed replays its draws; a failed call draws nothing. */
  tg_rng a, b;
  EXPECT(tg_rng_seed(NULL, 1), TG_ERR_NULL);
  EXPECT(tg_rng_seed(&a, 5), TG_OK);
  EXPECT(tg_rng_seed(&b, 5), TG_OK);
  if (decoder) {
    static float s1[1024], s2[1024];
    EXPECT(tg_sample(&m, &a, s1, n_out, scratch, size), TG_OK);
    tg_rng before = a;
    EXPECT(tg_sample(&m, &a, s2, n_out, scratch, size - 4), TG_ERR_SCRATCH_TOO_SMALL);
    EXPECT(tg_sample(&m, &a, s2, n_out + 1, scratch, size), TG_ERR_DIMENSION);
    EXPECT(tg_sample(&m, NULL, s2, n_out, scratch, size), TG_ERR_NULL);
    CHECK(memcmp(&before, &a, sizeof a) == 0);
    EXPECT(tg_sample(&m, &b, s2, n_out, scratch, size), TG_OK);
    CHECK(memcmp(s1, s2, n_out * sizeof(float)) == 0);
    EXPECT(tg_sample(&m, &b, s2, n_out, scratch, size), TG_OK);
    CHECK(memcmp(s1, s2, n_out * sizeof(float)) != 0);
  } else {
    tg_status s = tg_sample(&m, &a, out, n_out, scratch, size);
    CHECK(s == TG_ERR_WRONG_KIND || s == TG_ERR_NO_PRIOR);
  }
}

/* The golden recipe (windows of 4 samples x 2 channels, 2 components and
   a second density, 64 inputs to learn from and 16 to calibrate on, so
   3 x 16 scores: both terms and a copy) learned from C. */
static void learner_checks(void) {
  tg_learner_memory sizes;
  EXPECT(tg_learner_sizes(recipe, recipe_LEN, &sizes), TG_OK);
  CHECK(sizes.input_dim == 8 && sizes.scores == 48);
  CHECK(sizes.state <= 160 && sizes.features <= 1024 && sizes.file <= 1024);
  static double state[160];
  static float features[1024], scores[48];
  static _Alignas(4) uint8_t file[1024];
  tg_learner l;
  EXPECT(tg_learner_sizes(gmm, gmm_LEN, &sizes), TG_ERR_WRONG_KIND);
  EXPECT(tg_learner_start(&l, recipe, recipe_LEN, state, sizes.state, features, sizes.features,
                          scores, sizes.scores, file, sizes.file - 1),
         TG_ERR_SCRATCH_TOO_SMALL);
  EXPECT(tg_learner_start(&l, recipe, recipe_LEN, state, sizes.state, features, sizes.features,
                          features, sizes.scores, file, sizes.file),
         TG_ERR_OVERLAP);
  EXPECT(tg_learner_observe(&l, in, 8, NULL, NULL), TG_ERR_NOT_OPEN);
  EXPECT(tg_learner_start(&l, recipe, recipe_LEN, state, sizes.state, features, sizes.features,
                          scores, sizes.scores, file, sizes.file),
         TG_OK);
  const uint8_t *learned = NULL;
  size_t len = 0;
  EXPECT(tg_learner_file(&l, &learned, &len), TG_ERR_STILL_LEARNING);
  tg_progress progress = TG_PROGRESS_LEARNING;
  size_t remaining = 0;
  in[0] = NAN;
  EXPECT(tg_learner_observe(&l, in, 8, &progress, &remaining), TG_ERR_NONFINITE_INPUT);
  EXPECT(tg_learner_observe(&l, in, 7, &progress, &remaining), TG_ERR_DIMENSION);
  for (int i = 0; i < 80; i++) {
    for (int j = 0; j < 8; j++) in[j] = sinf(0.3f * (float)(4 * i + j / 2)) * (j % 2 ? 2.0f : 1.0f);
    EXPECT(tg_learner_observe(&l, in, 8, &progress, &remaining), TG_OK);
    CHECK(progress == (i < 63 ? TG_PROGRESS_LEARNING
                       : i < 79 ? TG_PROGRESS_CALIBRATING
                                : TG_PROGRESS_DONE));
    CHECK(remaining == (size_t)(i < 63 ? 63 - i : i < 79 ? 79 - i : 0));
  }
  EXPECT(tg_learner_file(&l, &learned, &len), TG_OK);
  CHECK(learned == file && len == sizes.file);
  tg_model d;
  open_ok(&d, learned, len, TG_KIND_DETECTOR);
  bool alarm = true;
  EXPECT(tg_detector_is_anomaly(&d, in, 8, &alarm), TG_OK);
  CHECK(!alarm);
  for (int j = 0; j < 8; j++) in[j] = 40.0f;
  EXPECT(tg_detector_is_anomaly(&d, in, 8, &alarm), TG_OK);
  CHECK(alarm);

  /* Stored at the start of an erased flash page, found there by its header. */
  static _Alignas(4) uint8_t page[4096];
  memset(page, 0xFF, sizeof page);
  size_t found = 0;
  EXPECT(tg_file_len(page, sizeof page, &found), TG_ERR_BAD_MAGIC);
  memcpy(page, learned, len);
  EXPECT(tg_file_len(page, sizeof page, &found), TG_OK);
  CHECK(found == len);
  EXPECT(tg_file_len(page, len - 1, &found), TG_ERR_LENGTH);
  tg_model stored;
  open_ok(&stored, page, found, TG_KIND_DETECTOR);
  EXPECT(tg_detector_is_anomaly(&stored, in, 8, &alarm), TG_OK);
  CHECK(alarm);
}

int main(void) {
  strerror_checks();
  open_checks();
  density_checks();
  network_checks(decoder, decoder_LEN, TG_KIND_DECODER);
  network_checks(encoder, encoder_LEN, TG_KIND_ENCODER);
  network_checks(decoder_int8, decoder_int8_LEN, TG_KIND_DECODER_INT8);
  network_checks(encoder_int8, encoder_int8_LEN, TG_KIND_ENCODER_INT8);
  learner_checks();
  printf("C API host checks: %d checks, %d failed\n", checks, failed);
  return failed == 0 ? 0 : 1;
}
