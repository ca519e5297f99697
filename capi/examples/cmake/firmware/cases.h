/* The test cases the C firmware checks, defined by a source that `cargo
   xtask c-cases` writes from case directories (model.tgm, inputs.csv,
   expected.csv, optional samples.csv and labels.csv; see xtask/src/lib.rs). */
#ifndef TG_CASES_H
#define TG_CASES_H

#include <stddef.h>
#include <stdint.h>

struct tg_case {
  const char *name;
  /* The model file, 4-byte aligned. */
  const uint8_t *model;
  size_t model_len;
  /* Values per input row, and per output row (1 for densities and detectors). */
  size_t dim, out_dim;
  size_t rows;
  /* The input rows' values, stored once where rows overlap (windows that
     share samples), and where each row's dim values start in them; rows x
     out_dim expected outputs as f32 bit patterns: a density's
     log-density, a detector's score, a network's output. */
  const float *inputs;
  const uint32_t *starts;
  const uint32_t *expected;
  /* A decoder's first samples with the generator seeded with 0 (bit
     patterns, n_samples x out_dim), or none. */
  const uint32_t *samples;
  size_t n_samples;
  /* A detector's labels (1 anomaly, 0 normal) per row, or none. */
  const uint8_t *labels;
  size_t n_labels;
};

extern const struct tg_case tg_cases[];
extern const size_t tg_case_count;

#endif
