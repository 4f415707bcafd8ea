/* data.h: training data for the runtime: Fashion-MNIST IDX files, keyed synthetic data and
 * token streams (language modelling).
 *
 * Fashion-MNIST: DIR/{train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
 * t10k-labels-idx1-ubyte}[.gz], default DIR /usr/share/datasets/fashion-mnist. Gzip files are
 * read with zlib when built with PD_HAVE_ZLIB; otherwise (or when the .gz is absent) the
 * uncompressed files are read. Magic numbers, dimensions, counts and truncation are checked; a
 * bad file is an error message, never a crash. Pixels are stored as bytes and normalised when a
 * batch is filled: x = (p/255 - 0.2860) / 0.3530 (torchvision's Fashion-MNIST mean and std).
 *
 * Synthetic: sample i has x ~ N(0, 1) elementwise, keyed by (seed, i), and label
 * argmax_k (P x)_k for a fixed keyed random projection P [classes][features]: learnable.
 * The train split uses indices [0, n); the test split [2^40, 2^40 + n).
 *
 * Batches: sample j of batch t of epoch e is order[t*batch + j], where order is the identity, or
 * when shuffling a keyed Fisher-Yates permutation from (seed, epoch) (same on every process).
 *
 * Token streams (docs/formats.md, "Token files"): one split is one file of token ids, u8 (a byte
 * each), u16 (little-endian uint16 each: nanoGPT's train.bin/val.bin) or llmc (llm.c: a header of
 * 256 little-endian int32, magic 20240520, version 1, token count, then uint16 tokens). A sample
 * is a window of T + 1 consecutive tokens (T = C, the context): x holds its first T ids as floats
 * (exact: ids < 65536 < 2^24), the targets are the next T. An epoch holds n = floor((N - 1) / T)
 * samples (N tokens). Sample j of an epoch starts at token j*T without shuffling (disjoint windows
 * covering the split: evaluation), and with shuffling at a keyed random offset in [0, N - T),
 * pd_rng_below(key(seed, PD_RNG_WINDOW, epoch, split), j), as nanoGPT's get_batch draws them.
 */
#ifndef PD_DATA_H
#define PD_DATA_H

#include <stddef.h>
#include <stdint.h>

#define PD_FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define PD_FMNIST_MEAN 0.2860f
#define PD_FMNIST_STD 0.3530f

typedef enum {
    PD_DATA_FMNIST = 0, PD_DATA_SYNTHETIC = 1, PD_DATA_TOKENS = 2,
    PD_DATA_REVERSE = 3 /* the synthetic sequence-to-sequence task: targets the reversed input */
} pd_data_kind;
typedef enum { PD_TOKENS_U8 = 0, PD_TOKENS_U16 = 1, PD_TOKENS_LLMC = 2 } pd_token_format;
#define PD_LLMC_MAGIC 20240520
#define PD_LLMC_HEADER_INTS 256

typedef struct {
    pd_data_kind kind;
    int64_t n;            /* samples */
    int C, H, W;          /* per-sample shape (rank-1 data: C = features, H = W = 1) */
    int classes;
    uint8_t *pixels;      /* fmnist: n*C*H*W bytes */
    uint8_t *labels;      /* fmnist: n bytes */
    uint64_t synth_seed;  /* synthetic: the data seed */
    int64_t synth_base;   /* synthetic: index of sample 0 */
    /* shuffle cache (filled on demand by pd_data_batch) */
    int32_t *order;
    int64_t order_epoch;
    uint64_t order_seed;
    int order_shuffled;
    float *synth_proj;    /* synthetic: P [classes][C*H*W], computed once */
    uint16_t *tokens;     /* tokens: the split's n_tokens ids; a sample is C + 1 of them */
    int64_t n_tokens;
    int split;            /* tokens: 0 train, 1 validation (a key of the offsets) */
} pd_data;

/* Loads a Fashion-MNIST split (train != 0: 60000 training samples; else 10000 test samples)
 * from dir (NULL: the default). Returns 0, or -1 with a message in err (errlen bytes). */
int pd_fmnist_load(pd_data *d, const char *dir, int train, char *err, size_t errlen);
/* Reads one IDX file (gzip or plain by its content when built with zlib); checks the magic
 * (0x00000803 images, 0x00000801 labels), dims and size. On success *out is malloc'd:
 * count*rows*cols bytes (images; rows = cols = 1 for labels). Returns 0, or -1 with err. */
int pd_idx_read(uint8_t **out, int64_t *count, int *rows, int *cols, const char *path,
                int want_images, char *err, size_t errlen);
/* Reads a token file in the given format: *out (malloc'd) gets its *n ids. Checks the llm.c
 * header (magic, version, count against the file's size), an odd-sized u16 file, emptiness.
 * Returns 0, or -1 with a message naming the file in err. */
int pd_tokens_read(uint16_t **out, int64_t *n, const char *path, pd_token_format fmt, char *err,
                   size_t errlen);
/* "u8", "u16", "llmc" -> *fmt; returns 0, or -1 for anything else */
int pd_token_format_parse(const char *s, pd_token_format *fmt);
/* Loads one split of a token stream as samples of T + 1 tokens; every id must be below vocab
 * (the model's classes). split: 0 train, 1 validation. Returns 0, or -1 with err. */
int pd_tokens_load(pd_data *d, const char *path, pd_token_format fmt, int T, int vocab, int split,
                   char *err, size_t errlen);
/* The first token of sample j of the epoch (see above). */
int64_t pd_tokens_offset(const pd_data *d, int64_t epoch, int64_t j, int shuffle, uint64_t seed);
/* targets per sample: T for token streams and `reverse`, 1 (a label) otherwise */
int pd_data_targets(const pd_data *d);
/* The synthetic sequence-to-sequence task `reverse` (docs/formats.md): n samples of T token ids
 * drawn uniformly from [0, vocab), sample i's id t = pd_rng_below(pd_rng_key(seed, PD_RNG_SYNTH,
 * base + i, 1, 0), t, vocab) (base 0 for training, 2^40 for validation), and T targets, the
 * same ids in reverse order: target t = id T-1-t. */
void pd_reverse_init(pd_data *d, int64_t n, int T, int vocab, uint64_t seed, int train);
/* A synthetic split of n samples of shape C x H x W with the given classes. */
void pd_synthetic_init(pd_data *d, int64_t n, int C, int H, int W, int classes, uint64_t seed,
                       int train);
void pd_data_free(pd_data *d);

/* floats per sample: C*H*W */
int64_t pd_data_sample_floats(const pd_data *d);
/* batches per epoch: floor(n/batch) when drop_last, else ceil(n/batch) */
int64_t pd_data_batches(const pd_data *d, int batch, int drop_last);
/* Sample index j of the epoch's order (shuffled by (seed, epoch) when shuffle != 0). */
int64_t pd_data_index(pd_data *d, int64_t epoch, int64_t j, int shuffle, uint64_t seed);
/* Fills x [count][C][H][W] (x may be NULL) and labels [count * pd_data_targets(d)] (may be
 * NULL) with batch
 * `batch_index` of epoch `epoch`; returns count = min(batch, n - batch_index*batch), 0 past the
 * end. Training drops the last partial batch by looping over pd_data_batches(d, batch, 1). */
int pd_data_batch(float *x, int *labels, pd_data *d, int64_t epoch, int64_t batch_index,
                  int batch, int shuffle, uint64_t seed);
/* The keyed Fisher-Yates permutation of [0, n) for (seed, epoch) into order[n]. */
void pd_shuffle_order(int32_t *order, int64_t n, uint64_t seed, int64_t epoch);

#endif
