/* data.h: training data for the runtime: Fashion-MNIST IDX files and keyed synthetic data.
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
 */
#ifndef PD_DATA_H
#define PD_DATA_H

#include <stddef.h>
#include <stdint.h>

#define PD_FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define PD_FMNIST_MEAN 0.2860f
#define PD_FMNIST_STD 0.3530f

typedef enum { PD_DATA_FMNIST = 0, PD_DATA_SYNTHETIC = 1 } pd_data_kind;

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
} pd_data;

/* Loads a Fashion-MNIST split (train != 0: 60000 training samples; else 10000 test samples)
 * from dir (NULL: the default). Returns 0, or -1 with a message in err (errlen bytes). */
int pd_fmnist_load(pd_data *d, const char *dir, int train, char *err, size_t errlen);
/* Reads one IDX file (gzip or plain by its content when built with zlib); checks the magic
 * (0x00000803 images, 0x00000801 labels), dims and size. On success *out is malloc'd:
 * count*rows*cols bytes (images; rows = cols = 1 for labels). Returns 0, or -1 with err. */
int pd_idx_read(uint8_t **out, int64_t *count, int *rows, int *cols, const char *path,
                int want_images, char *err, size_t errlen);
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
/* Fills x [count][C][H][W] (x may be NULL) and labels [count] (may be NULL) with batch
 * `batch_index` of epoch `epoch`; returns count = min(batch, n - batch_index*batch), 0 past the
 * end. Training drops the last partial batch by looping over pd_data_batches(d, batch, 1). */
int pd_data_batch(float *x, int *labels, pd_data *d, int64_t epoch, int64_t batch_index,
                  int batch, int shuffle, uint64_t seed);
/* The keyed Fisher-Yates permutation of [0, n) for (seed, epoch) into order[n]. */
void pd_shuffle_order(int32_t *order, int64_t n, uint64_t seed, int64_t epoch);

#endif
