/*
 * mdrec native GEMM: a Node-API add-on that runs single-precision matrix products with the
 * system BLAS (`cblas_sgemm`, OpenBLAS on Debian) directly on the tfjs wasm backend's heap, so
 * tensors never leave wasm memory. It also holds the fused Adam update (one pass per variable).
 * Optional: @mdrec/core compiles it on first use when a C compiler is present and falls back to
 * its pure TypeScript kernels otherwise.
 *
 * Threads: OpenBLAS runs on one; the add-on's own small pool (see pool_threads) spreads the
 * products of a call and large Adam updates over the threads set by setThreads.
 *
 * The BLAS library is opened with dlopen at load time (no link-time dependency, no -dev
 * package needed): $MDREC_BLAS_LIBRARY, else the usual OpenBLAS / reference CBLAS names.
 */
#include <dlfcn.h>
#include <float.h>
#include <math.h>
#include <node_api.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

typedef void (*sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc);
typedef void (*set_threads_fn)(int threads);
typedef char *(*corename_fn)(void);

static sgemm_fn blas_sgemm = NULL;
static set_threads_fn blas_set_threads = NULL;
static char blas_name[512] = "";
static char blas_core[64] = "";
static char load_error[1024] = "";

static int open_blas(void) {
  const char *candidates[] = {getenv("MDREC_BLAS_LIBRARY"), "libopenblas.so.0", "libopenblas.so",
                              "libcblas.so.3", "libblas.so.3", "libopenblas.dylib",
                              "/System/Library/Frameworks/Accelerate.framework/Accelerate"};
  size_t count = sizeof(candidates) / sizeof(candidates[0]);
  /* OpenBLAS starts one thread per core when it loads unless told otherwise; it runs on one, and
   * the add-on's own pool spreads products over threads (see pool_threads, setThreads). */
  setenv("OPENBLAS_NUM_THREADS", "1", 0);
  for (size_t i = 0; i < count; i++) {
    if (candidates[i] == NULL || candidates[i][0] == '\0') continue;
    void *handle = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
      snprintf(load_error, sizeof(load_error), "%s", dlerror());
      continue;
    }
    sgemm_fn found = (sgemm_fn)dlsym(handle, "cblas_sgemm");
    if (found == NULL) {
      snprintf(load_error, sizeof(load_error), "%s has no cblas_sgemm", candidates[i]);
      dlclose(handle);
      continue;
    }
    blas_sgemm = found;
    blas_set_threads = (set_threads_fn)dlsym(handle, "openblas_set_num_threads");
    /* Even when OPENBLAS_NUM_THREADS asked for more: threads come from the add-on's pool. */
    if (blas_set_threads != NULL) blas_set_threads(1);
    snprintf(blas_name, sizeof(blas_name), "%s", candidates[i]);
    /* OpenBLAS builds with DYNAMIC_ARCH pick their kernel family (Haswell, SkylakeX, ...) from
     * the CPU, or from $OPENBLAS_CORETYPE, when they load; step times depend on it. */
    corename_fn corename = (corename_fn)dlsym(handle, "openblas_get_corename");
    const char *core = corename != NULL ? corename() : NULL;
    snprintf(blas_core, sizeof(blas_core), "%s", core != NULL ? core : "");
    return 1;
  }
  return 0;
}

static napi_value throw_error(napi_env env, const char *message) {
  napi_throw_error(env, "MDREC_NATIVE_GEMM", message);
  return NULL;
}

/* Reads an ArrayBuffer argument (the wasm heap): its data and byte length. */
static int arraybuffer_arg(napi_env env, napi_value value, void **data, size_t *length) {
  bool is_buffer = false;
  napi_is_arraybuffer(env, value, &is_buffer);
  return is_buffer && napi_get_arraybuffer_info(env, value, data, length) == napi_ok;
}

/* The arguments of an add-on function whose first argument is the heap (an ArrayBuffer): exactly
 * `count` of them into argv, and the buffer's data and length. On failure it throws
 * "<name> expects <count> arguments" or "<name>: argument 0 must be an ArrayBuffer" and returns 0. */
static int heap_call_args(napi_env env, napi_callback_info info, size_t count, napi_value *argv,
                          const char *name, void **data, size_t *length) {
  size_t argc = count;
  char message[128];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != count) {
    snprintf(message, sizeof(message), "%s expects %zu arguments", name, count);
    throw_error(env, message);
    return 0;
  }
  if (!arraybuffer_arg(env, argv[0], data, length)) {
    snprintf(message, sizeof(message), "%s: argument 0 must be an ArrayBuffer", name);
    throw_error(env, message);
    return 0;
  }
  return 1;
}

/* Reads the integers argv[first .. first + count) into v; when one is not an integer in
 * [low, high], throws `message` and returns 0. */
static int int64_args(napi_env env, const napi_value *argv, int first, int count, int64_t *v, int64_t low,
                      int64_t high, const char *message) {
  for (int i = 0; i < count; i++) {
    if (napi_get_value_int64(env, argv[first + i], &v[i]) != napi_ok || v[i] < low || v[i] > high) {
      throw_error(env, message);
      return 0;
    }
  }
  return 1;
}

/* Whether every one of `count` arrays of `bytes` bytes at byte offsets `offsets` is 4-byte
 * aligned and inside a buffer of `length` bytes. */
static int arrays_fit(const int64_t *offsets, int count, int64_t bytes, size_t length) {
  for (int i = 0; i < count; i++) {
    if (offsets[i] % 4 != 0 || offsets[i] + bytes > (int64_t)length) return 0;
  }
  return 1;
}

/* Largest byte offset touched by a row-major matrix of `rows` x `cols` with leading dimension ld. */
static int64_t extent(int64_t offset, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                      int64_t stride) {
  if (rows == 0 || cols == 0 || batch == 0) return offset;
  return offset + 4 * ((batch - 1) * stride + (rows - 1) * ld + cols);
}

/* Products of at most this many multiply-adds, in a batch, skip BLAS: its per-call cost
 * (argument checks, packing) is many times the work, e.g. the [1, N] @ [N, d] expert mixture
 * of every row of a batch. */
#define SMALL_PRODUCT 8192

/* A call of one product with fewer output columns or a shorter inner dimension than this runs on
 * the caller's thread: splitting its rows over threads costs more than it saves (measured on 2
 * cores with OpenBLAS's threads: [1024, 128] @ [128, 24] takes 71 us on one thread, 164 us on
 * two; gate and tower layers are this shape), while [1024, 128] @ [128, 128] already gains 1.17x. */
#define NARROW_PRODUCT 96

/* So do calls of one product with fewer rows than SHORT_PRODUCT and calls of fewer multiply-adds
 * in all than PARALLEL_MIN_MULTIPLY_ADDS (measured on 2 cores with OpenBLAS's threads, with tfjs
 * ops between calls): [8, 512] @ [512, 128] (a partitioned norm's per-domain
 * sums) takes 19 us on one thread and 29 us on two; 8 expert segments of [64, 128] @ [128, 128]
 * 0.33 ms and 0.50-0.58 ms; [128, 128] @ [128, 128] segments 0.47 and 0.52 ms; while
 * [128, 128] @ [128, 256] segments (4.2M multiply-adds) gain 1.2x from the second thread. */
#define SHORT_PRODUCT 32
#define MAX_POOL_THREADS 16
#define PARALLEL_MIN_MULTIPLY_ADDS 3000000

/* One product of a call, or a block of its output rows or columns. */
struct gemm_task {
  int64_t m, n, k, cost;
  const float *a, *b, *bias;
  float *c;
};

/* The products of one add-on call. `sequential`: their outputs may overlap, so one thread runs
 * them in order. `epilogue`: bias and/or relu after each product. */
struct gemm_job {
  struct gemm_task *tasks;
  int count, transpose_a, transpose_b, relu, epilogue, sequential;
  int next; /* atomic: the next task to claim (tasks sorted largest first) */
  int64_t lda, ldb, ldc;
};

static void run_job(struct gemm_job *job, int64_t capacity);
static struct gemm_job *new_job(int count, int transpose_a, int transpose_b, int64_t lda, int64_t ldb,
                                int64_t ldc, int64_t *capacity);
static void add_task(struct gemm_job *job, int64_t m, int64_t n, int64_t k, const float *a,
                     const float *b, float *c, const float *bias);
static void free_job(struct gemm_job *job);

static int ranges_overlap(int64_t a, int64_t a_bytes, int64_t b, int64_t b_bytes);

/* C = op(A) @ op(B) by plain loops (row-major), summing over k in order. */
static void small_sgemm(int transpose_a, int transpose_b, int64_t m, int64_t n, int64_t k,
                        const float *a, int64_t lda, const float *b, int64_t ldb, float *restrict c,
                        int64_t ldc) {
  for (int64_t i = 0; i < m; i++) {
    float *row = c + i * ldc;
    for (int64_t j = 0; j < n; j++) row[j] = 0.0f;
    for (int64_t p = 0; p < k; p++) {
      const float value = transpose_a ? a[p * lda + i] : a[i * lda + p];
      if (transpose_b) {
        for (int64_t j = 0; j < n; j++) row[j] += value * b[j * ldb + p];
      } else {
        const float *b_row = b + p * ldb;
        for (int64_t j = 0; j < n; j++) row[j] += value * b_row[j];
      }
    }
  }
}

/*
 * sgemmBatched(buffer, transposeA, transposeB, m, n, k, batch,
 *              aOffset, lda, strideA, bOffset, ldb, strideB, cOffset, ldc, strideC)
 * For each batch entry i: C_i = op(A_i) @ op(B_i), row-major. Offsets in bytes into `buffer`
 * (an ArrayBuffer), strides in floats (0 broadcasts one matrix over the batch). Every access is
 * bounds-checked against the buffer before BLAS runs.
 */
static napi_value sgemm_batched(napi_env env, napi_callback_info info) {
  napi_value argv[16];
  void *data = NULL;
  size_t length = 0;
  if (!heap_call_args(env, info, 16, argv, "sgemmBatched", &data, &length)) return NULL;
  bool transpose_a = false, transpose_b = false;
  napi_get_value_bool(env, argv[1], &transpose_a);
  napi_get_value_bool(env, argv[2], &transpose_b);
  int64_t v[13];
  if (!int64_args(env, argv, 3, 13, v, 0, INT32_MAX,
                  "sgemmBatched: sizes, offsets and strides must be integers in [0, 2^31)"))
    return NULL;
  int64_t m = v[0], n = v[1], k = v[2], batch = v[3];
  int64_t a_offset = v[4], lda = v[5], stride_a = v[6];
  int64_t b_offset = v[7], ldb = v[8], stride_b = v[9];
  int64_t c_offset = v[10], ldc = v[11], stride_c = v[12];
  int64_t a_rows = transpose_a ? k : m, a_cols = transpose_a ? m : k;
  int64_t b_rows = transpose_b ? n : k, b_cols = transpose_b ? k : n;
  if (lda < a_cols || ldb < b_cols || ldc < n || (a_offset | b_offset | c_offset) % 4 != 0) {
    return throw_error(env, "sgemmBatched: leading dimensions or alignment out of range");
  }
  if (extent(a_offset, a_rows, a_cols, lda, batch, stride_a) > (int64_t)length ||
      extent(b_offset, b_rows, b_cols, ldb, batch, stride_b) > (int64_t)length ||
      extent(c_offset, m, n, ldc, batch, stride_c) > (int64_t)length) {
    return throw_error(env, "sgemmBatched: a matrix lies outside the buffer");
  }
  uint8_t *base = (uint8_t *)data;
  const float *a = (const float *)(base + a_offset);
  const float *b = (const float *)(base + b_offset);
  float *c = (float *)(base + c_offset);
  if (m * n * k <= SMALL_PRODUCT && batch > 1) {
    for (int64_t i = 0; i < batch; i++) {
      small_sgemm(transpose_a, transpose_b, m, n, k, a + i * stride_a, lda, b + i * stride_b, ldb,
                  c + i * stride_c, ldc);
    }
    return NULL;
  }
  int64_t capacity = 0;
  struct gemm_job *job = new_job((int)batch, transpose_a, transpose_b, lda, ldb, ldc, &capacity);
  if (job == NULL) return throw_error(env, "sgemmBatched: out of memory");
  for (int64_t i = 0; i < batch; i++) {
    add_task(job, m, n, k, a + i * stride_a, b + i * stride_b, c + i * stride_c, NULL);
  }
  /* Entries whose outputs overlap (stride 0 broadcasts C too) are written in order by one thread.
   * They are apart when each starts past the previous one's last row, or when they are column
   * blocks side by side within the rows (the block-diagonal expert layers). */
  const int apart = stride_c >= (m - 1) * ldc + n || (stride_c >= n && (batch - 1) * stride_c + n <= ldc);
  job->sequential = batch > 1 && m > 0 && n > 0 && !apart;
  run_job(job, capacity);
  free_job(job);
  return NULL;
}

/* Reads a typed array argument: its data, element count and element type. */
static int typed_array_arg(napi_env env, napi_value value, napi_typedarray_type want, void **data,
                           size_t *count) {
  bool is_typed = false;
  napi_typedarray_type type;
  napi_value array_buffer;
  size_t offset = 0;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  if (napi_get_typedarray_info(env, value, &type, count, data, &array_buffer, &offset) != napi_ok)
    return 0;
  return type == want;
}

/* Reads argument `value` as a Float64Array of `per_entry` numbers per entry into *plan and the
 * number of entries into *entries; otherwise throws `message` and returns 0. */
static int float64_plan_arg(napi_env env, napi_value value, size_t per_entry, const char *message, double **plan,
                            size_t *entries) {
  size_t length = 0;
  if (!typed_array_arg(env, value, napi_float64_array, (void **)plan, &length) || length % per_entry != 0) {
    throw_error(env, message);
    return 0;
  }
  *entries = length / per_entry;
  return 1;
}

/* ---- Grouped products on a small pool of threads ---------------------------------------- */

/* Adds `bias` (NULL: none) to each of `rows` rows of `cols` floats at `c` (row stride ldc), then
 * with `relu` clamps negatives to 0 (NaN stays NaN, as in tfjs's Relu). */
static void bias_activation_rows(float *c, int64_t rows, int64_t cols, int64_t ldc,
                                 const float *bias, int relu) {
  for (int64_t row = 0; row < rows; row++) {
    float *out = c + row * ldc;
    if (bias != NULL)
      for (int64_t col = 0; col < cols; col++) out[col] += bias[col];
    if (relu)
      for (int64_t col = 0; col < cols; col++) out[col] = out[col] < 0.0f ? 0.0f : out[col];
  }
}

/* Multiply-adds of a task (an empty inner dimension still writes its zeros: cost m * n). */
static int64_t task_cost(const struct gemm_task *task) {
  return task->m * task->n * (task->k > 0 ? task->k : 1);
}

/* Room for `count` products plus the blocks split off them for balance; NULL when out of memory. */
static struct gemm_job *new_job(int count, int transpose_a, int transpose_b, int64_t lda, int64_t ldb,
                                int64_t ldc, int64_t *capacity) {
  struct gemm_job *job = (struct gemm_job *)calloc(1, sizeof(struct gemm_job));
  if (job == NULL) return NULL;
  *capacity = (int64_t)count + 4 * MAX_POOL_THREADS;
  job->tasks = (struct gemm_task *)malloc(sizeof(struct gemm_task) * (size_t)*capacity);
  if (job->tasks == NULL) {
    free(job);
    return NULL;
  }
  job->transpose_a = transpose_a;
  job->transpose_b = transpose_b;
  job->lda = lda;
  job->ldb = ldb;
  job->ldc = ldc;
  return job;
}

static void add_task(struct gemm_job *job, int64_t m, int64_t n, int64_t k, const float *a,
                     const float *b, float *c, const float *bias) {
  struct gemm_task *task = &job->tasks[job->count++];
  *task = (struct gemm_task){.m = m, .n = n, .k = k, .a = a, .b = b, .bias = bias, .c = c};
  task->cost = task_cost(task);
}

static void free_job(struct gemm_job *job) {
  free(job->tasks);
  free(job);
}

static void run_task(const struct gemm_job *job, const struct gemm_task *task) {
  if (task->m == 0 || task->n == 0) return;
  if (task->k == 0) {
    for (int64_t row = 0; row < task->m; row++) memset(task->c + row * job->ldc, 0, 4 * task->n);
  } else {
    blas_sgemm(ROW_MAJOR, job->transpose_a ? TRANS : NO_TRANS, job->transpose_b ? TRANS : NO_TRANS,
               (int)task->m, (int)task->n, (int)task->k, 1.0f, task->a, (int)job->lda, task->b,
               (int)job->ldb, 0.0f, task->c, (int)job->ldc);
  }
  if (job->epilogue) bias_activation_rows(task->c, task->m, task->n, job->ldc, task->bias, job->relu);
}

/* Claims the next unclaimed position of a job of `count` items (an atomic counter in the job);
 * returns `count` or more when every item is taken. */
static int claim_next(const int *next) {
  return __atomic_fetch_add((int *)next, 1, __ATOMIC_RELAXED);
}

/* Threads for products (the caller included), set by setThreads. OpenBLAS itself always runs on
 * one thread: its own workers spin for a while after each threaded call (OPENBLAS_THREAD_TIMEOUT,
 * ~0.1 s by default) and took the second core from everything else (measured: 16 expert segments
 * spread over two threads ran at 140-157 GFLOP/s alone, 83-93 next to OpenBLAS-threaded calls). */
static int pool_threads = 1;

/* Worker threads 1..MAX_POOL_THREADS-1 (the caller is thread 0). One job runs at a time
 * (pool_busy; a second caller, e.g. from another Node worker thread, runs its products on its own
 * thread instead). A job is posted by bumping pool_generation; workers spin for POOL_SPIN_NS after
 * each job before they sleep on pool_wake: on the shared VMs waking a sleeping thread took long
 * enough to make 4096-row inference 1.25x slower than with OpenBLAS's own (spinning) threads.
 *
 * Every job's work is claimed piece by piece from a shared counter, and a worker joins a job only
 * while it is open (pool_state). The caller claims pieces too; once none is left it closes the
 * job and waits just for the workers inside it. A worker that had not started by then (its core
 * taken by the JS engine's helper threads, or by another process) sits the job out instead of
 * holding the caller up: measured before this rule, ~8% of 2-thread calls waited 1-7 ms for a
 * worker to arrive, against ~0.1 ms of work. */
#define POOL_SPIN_NS 2000000
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_wake = PTHREAD_COND_INITIALIZER;
static int pool_started = 1; /* threads running, the caller included */
static int pool_busy = 0;
static unsigned long pool_generation = 0; /* atomic */
/* atomic: POOL_OPEN while workers may join the posted job, plus the number of workers in it */
static int pool_state = 0;
#define POOL_OPEN 0x40000000
static int pool_sleepers = 0;             /* atomic: workers asleep or about to be */
/* The posted job: work(context, self, threads) runs thread `self`'s share. */
typedef void (*pool_work_fn)(const void *context, int self, int threads);
static pool_work_fn pool_work = NULL;
static const void *pool_context = NULL;
static int pool_job_threads = 0; /* threads of the posted job; workers >= it sit it out */
/* The generation each worker was started in (set under pool_lock before it starts), so a job
 * posted before the new thread first looks is not missed. */
static unsigned long pool_start_generation[MAX_POOL_THREADS];

static int64_t now_ns(void) {
  struct timespec time;
  clock_gettime(CLOCK_MONOTONIC, &time);
  return (int64_t)time.tv_sec * 1000000000 + time.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Waits until pool_generation differs from `seen`, spinning first; returns the new generation. */
static unsigned long pool_wait(unsigned long seen) {
  const int64_t deadline = now_ns() + POOL_SPIN_NS;
  for (unsigned spins = 1;; spins++) {
    unsigned long generation = __atomic_load_n(&pool_generation, __ATOMIC_ACQUIRE);
    if (generation != seen) return generation;
    cpu_relax();
    if (spins % 256 == 0) {
      if (now_ns() > deadline) break;
      sched_yield(); /* let other runnable threads (the JS engine's helpers) have the core */
    }
  }
  pthread_mutex_lock(&pool_lock);
  __atomic_add_fetch(&pool_sleepers, 1, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(&pool_generation, __ATOMIC_SEQ_CST) == seen)
    pthread_cond_wait(&pool_wake, &pool_lock);
  __atomic_sub_fetch(&pool_sleepers, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&pool_lock);
  return __atomic_load_n(&pool_generation, __ATOMIC_ACQUIRE);
}

static void *pool_worker(void *argument) {
  const int self = (int)(intptr_t)argument;
  unsigned long seen = __atomic_load_n(&pool_start_generation[self], __ATOMIC_ACQUIRE);
  for (;;) {
    seen = pool_wait(seen);
    int state = __atomic_load_n(&pool_state, __ATOMIC_ACQUIRE);
    int joined = 0;
    while ((state & POOL_OPEN) && !joined) {
      joined = __atomic_compare_exchange_n(&pool_state, &state, state + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
    if (!joined) continue; /* closed: the caller has finished the job without this thread */
    /* Inside the job now open, which may be newer than `seen`: its fields are read only here. */
    const int threads = __atomic_load_n(&pool_job_threads, __ATOMIC_ACQUIRE);
    if (self < threads) pool_work(pool_context, self, threads);
    __atomic_sub_fetch(&pool_state, 1, __ATOMIC_RELEASE);
  }
  return NULL;
}

static int pool_reserve(int threads);

/* Posts work(context, ...) to workers 1..threads-1 and runs it on the caller (thread 0). `work`
 * must claim its pieces from a shared counter, so that the caller's call alone finishes the job
 * when no worker joins; then waits for the workers that joined. */
static void pool_run(pool_work_fn work, const void *context, int threads) {
  pool_work = work;
  pool_context = context;
  __atomic_store_n(&pool_job_threads, threads, __ATOMIC_RELEASE);
  __atomic_store_n(&pool_state, POOL_OPEN, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&pool_generation, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&pool_sleepers, __ATOMIC_SEQ_CST) > 0) {
    pthread_mutex_lock(&pool_lock);
    pthread_cond_broadcast(&pool_wake);
    pthread_mutex_unlock(&pool_lock);
  }
  work(context, 0, threads);
  __atomic_and_fetch(&pool_state, ~POOL_OPEN, __ATOMIC_ACQ_REL);
  while (__atomic_load_n(&pool_state, __ATOMIC_ACQUIRE) != 0) cpu_relax();
}

/* Reserves up to `wanted` pool threads for one job (the caller included); 1 when the pool is
 * busy with another caller's job. Release with pool_release when more than 1. */
static int pool_acquire(int wanted) {
  int usable = 1;
  pthread_mutex_lock(&pool_lock);
  if (!pool_busy) usable = pool_reserve(wanted);
  if (usable > 1) pool_busy = 1;
  pthread_mutex_unlock(&pool_lock);
  return usable;
}

static void pool_release(void) {
  pthread_mutex_lock(&pool_lock);
  pool_busy = 0;
  pthread_mutex_unlock(&pool_lock);
}

static void gemm_work(const void *context, int self, int threads) {
  (void)self;
  (void)threads;
  const struct gemm_job *job = (const struct gemm_job *)context;
  for (int i; (i = claim_next(&job->next)) < job->count;) run_task(job, &job->tasks[i]);
}

/* Starts workers until `threads` threads (the caller included) can run; returns how many can.
 * Called with pool_lock held. */
static int pool_reserve(int threads) {
  if (threads > MAX_POOL_THREADS) threads = MAX_POOL_THREADS;
  while (pool_started < threads) {
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    __atomic_store_n(&pool_start_generation[pool_started], __atomic_load_n(&pool_generation, __ATOMIC_SEQ_CST), __ATOMIC_RELEASE);
    int failed = pthread_create(&thread, &attributes, pool_worker, (void *)(intptr_t)pool_started);
    pthread_attr_destroy(&attributes);
    if (failed) break;
    pool_started++;
  }
  return pool_started < threads ? pool_started : threads;
}

static int compare_cost(const void *left, const void *right) {
  const struct gemm_task *a = (const struct gemm_task *)left, *b = (const struct gemm_task *)right;
  return a->cost < b->cost ? 1 : a->cost > b->cost ? -1 : 0;
}

/* Sorts the tasks largest first (the order threads claim them in) and returns the busiest
 * thread's cost when `threads` threads take them in that order, each the next when it is free. */
static int64_t sort_tasks(struct gemm_task *tasks, int count, int threads) {
  int64_t load[MAX_POOL_THREADS] = {0};
  qsort(tasks, (size_t)count, sizeof *tasks, compare_cost);
  int64_t busiest = 0;
  for (int i = 0; i < count; i++) {
    int least = 0;
    for (int t = 1; t < threads; t++)
      if (load[t] < load[least]) least = t;
    load[least] += tasks[i].cost;
    if (load[least] > busiest) busiest = load[least];
  }
  return busiest;
}

/* Splits task `index` in two along its longer output side (rows, or columns in multiples of 16)
 * and appends the second half; returns 0 when it is too small to split. */
static int split_task(struct gemm_job *job, int index) {
  struct gemm_task *task = &job->tasks[index];
  struct gemm_task second = *task;
  if (task->m >= task->n) {
    const int64_t first = task->m / 2;
    if (first < SHORT_PRODUCT) return 0;
    second.m = task->m - first;
    second.a = job->transpose_a ? task->a + first : task->a + first * job->lda;
    second.c = task->c + first * job->ldc;
    task->m = first;
  } else {
    const int64_t first = (task->n / 2 + 15) / 16 * 16;
    if (task->n < 64 || first >= task->n) return 0;
    second.n = task->n - first;
    second.b = job->transpose_b ? task->b + first * job->ldb : task->b + first;
    second.c = task->c + first;
    if (task->bias != NULL) second.bias = task->bias + first;
    task->n = first;
  }
  task->cost = task_cost(task);
  second.cost = task_cost(&second);
  job->tasks[job->count++] = second;
  return 1;
}

/* Whether a job of one product is too narrow or short to gain from more threads. */
static int single_thread_product(const struct gemm_task *task) {
  return task->n < NARROW_PRODUCT || task->k < NARROW_PRODUCT || task->m < SHORT_PRODUCT;
}

/* Runs every task of `job`: on the caller's thread when the work is small, else spread over the
 * pool, each product (or block of one) on one BLAS thread. */
static void run_job(struct gemm_job *job, int64_t capacity) {
  int64_t total = 0;
  for (int i = 0; i < job->count; i++) total += job->tasks[i].cost;
  int usable = 1;
  const int threads = __atomic_load_n(&pool_threads, __ATOMIC_RELAXED);
  if (threads > 1 && !job->sequential && total >= PARALLEL_MIN_MULTIPLY_ADDS &&
      !(job->count == 1 && single_thread_product(&job->tasks[0]))) {
    usable = pool_acquire(threads);
  }
  if (usable == 1) {
    for (int i = 0; i < job->count; i++) run_task(job, &job->tasks[i]);
    return;
  }
  /* Split the largest products until the busiest thread has at most 10% over its share. */
  int64_t busiest = sort_tasks(job->tasks, job->count, usable);
  while (busiest * 10 > total * 11 / usable && job->count < capacity && split_task(job, 0)) {
    busiest = sort_tasks(job->tasks, job->count, usable);
  }
  job->next = 0;
  pool_run(gemm_work, job, usable);
  pool_release();
}

/* Whether any two tasks' output ranges overlap (tasks not yet split; rows of n floats, stride ldc). */
static int compare_start(const void *left, const void *right) {
  const float *a = *(const float *const *)left, *b = *(const float *const *)right;
  return a < b ? -1 : a > b ? 1 : 0;
}

static int outputs_overlap(const struct gemm_job *job, int64_t n, int64_t ldc) {
  if (job->count < 2 || n == 0) return 0;
  /* Pairs (start, end) sorted by start; any start before the previous end overlaps. */
  const float **ranges = (const float **)malloc(sizeof(float *) * 2 * (size_t)job->count);
  if (ranges == NULL) return 1;
  int used = 0;
  for (int i = 0; i < job->count; i++) {
    const struct gemm_task *task = &job->tasks[i];
    if (task->m == 0) continue;
    ranges[2 * used] = task->c;
    ranges[2 * used + 1] = task->c + (task->m - 1) * ldc + n;
    used++;
  }
  qsort(ranges, (size_t)used, 2 * sizeof(float *), compare_start);
  int overlap = 0;
  for (int i = 1; i < used && !overlap; i++) overlap = ranges[2 * i] < ranges[2 * i - 1];
  free(ranges);
  return overlap;
}

/*
 * sgemmGrouped(buffer, transposeA, transposeB, n, lda, ldb, ldc, plan, relu)
 * For each group g, with plan (a Float64Array) holding six numbers per group
 * [m, k, aOffset, bOffset, cOffset, biasOffset]: C_g = op(A_g) @ op(B_g), row-major, C_g being
 * [m, n] (zeros when k is 0); then when biasOffset >= 0 or relu, C_g = act(C_g + bias_g) with the
 * [n] bias at biasOffset (-1: none). Offsets in bytes. The groups' outputs should not overlap
 * (overlapping ones are written in order, by one thread). With more than one pool thread
 * (setThreads), the products are spread over the pool, each product (or a half of one, for
 * balance) on one thread: the sparse expert segments are many products of ~100 rows.
 */
static napi_value sgemm_grouped(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  void *data = NULL;
  size_t length = 0;
  if (!heap_call_args(env, info, 9, argv, "sgemmGrouped", &data, &length)) return NULL;
  bool transpose_a = false, transpose_b = false, relu = false;
  napi_get_value_bool(env, argv[1], &transpose_a);
  napi_get_value_bool(env, argv[2], &transpose_b);
  napi_get_value_bool(env, argv[8], &relu);
  int64_t v[4];
  if (!int64_args(env, argv, 3, 4, v, 0, INT32_MAX,
                  "sgemmGrouped: n and the leading dimensions must be integers in [0, 2^31)"))
    return NULL;
  int64_t n = v[0], lda = v[1], ldb = v[2], ldc = v[3];
  double *plan = NULL;
  size_t plan_length = 0;
  if (!typed_array_arg(env, argv[7], napi_float64_array, (void **)&plan, &plan_length) ||
      plan_length % 6 != 0) {
    return throw_error(env, "sgemmGrouped: plan must be a Float64Array of 6 numbers per group");
  }
  const int groups = (int)(plan_length / 6);
  if (plan_length / 6 > 65536) return throw_error(env, "sgemmGrouped: at most 65536 groups");
  if (groups == 0 || n == 0) return NULL;
  int64_t capacity = 0;
  struct gemm_job *job = new_job(groups, transpose_a, transpose_b, lda, ldb, ldc, &capacity);
  if (job == NULL) return throw_error(env, "sgemmGrouped: out of memory");
  job->relu = relu;
  job->epilogue = relu;
  uint8_t *base = (uint8_t *)data;
  for (int g = 0; g < groups; g++) {
    const double *p = plan + 6 * g;
    int64_t q[6];
    for (int i = 0; i < 6; i++) {
      if (!(p[i] >= -1 && p[i] <= (double)INT32_MAX * 4) || p[i] != (double)(int64_t)p[i] ||
          (i < 5 && p[i] < 0)) {
        free_job(job);
        return throw_error(env, "sgemmGrouped: plan entries must be non-negative integers below 2^33 (biasOffset may be -1)");
      }
      q[i] = (int64_t)p[i];
    }
    const int64_t m = q[0], k = q[1];
    const int64_t a_rows = transpose_a ? k : m, a_cols = transpose_a ? m : k;
    const int64_t b_rows = transpose_b ? n : k, b_cols = transpose_b ? k : n;
    if (m > INT32_MAX || k > INT32_MAX || (lda < a_cols && a_rows > 0) || (ldb < b_cols && b_rows > 0) ||
        ldc < n || (q[2] | q[3] | q[4]) % 4 != 0 || (q[5] >= 0 && q[5] % 4 != 0) ||
        extent(q[2], a_rows, a_cols, lda, 1, 0) > (int64_t)length ||
        extent(q[3], b_rows, b_cols, ldb, 1, 0) > (int64_t)length ||
        extent(q[4], m, n, ldc, 1, 0) > (int64_t)length ||
        (q[5] >= 0 && q[5] + 4 * n > (int64_t)length)) {
      free_job(job);
      return throw_error(env, "sgemmGrouped: a matrix of the plan lies outside the buffer or is misaligned");
    }
    if (q[5] >= 0) job->epilogue = 1;
    add_task(job, m, n, k, (const float *)(base + q[2]), (const float *)(base + q[3]),
             (float *)(base + q[4]), q[5] >= 0 ? (const float *)(base + q[5]) : NULL);
  }
  /* Outputs that overlap (which callers should not pass) are written in order, by one thread. */
  job->sequential = outputs_overlap(job, n, ldc);
  run_job(job, capacity);
  free_job(job);
  return NULL;
}

/*
 * gatherConcat(buffer, outOffset, rows, plan) -> null, or [field, row, id] of the first id out
 * of range (nothing is written then). `plan` (Int32Array) holds four integers per field: table byte offset, table rows, width and
 * the byte offset of the field's int32 ids [rows]. Writes out[row] = concat over fields of
 * table_f[ids_f[row]] (row-major [rows, sum of widths]), a row's fields one after the other, so
 * the random table reads of one output row are in flight together.
 */
static napi_value gather_concat(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  void *data = NULL;
  size_t length = 0;
  if (!heap_call_args(env, info, 4, argv, "gatherConcat", &data, &length)) return NULL;
  int64_t out_offset = 0, rows = 0;
  if (napi_get_value_int64(env, argv[1], &out_offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &rows) != napi_ok || out_offset < 0 || rows < 0 ||
      out_offset % 4 != 0) {
    return throw_error(env, "gatherConcat: the output offset and rows must be non-negative integers");
  }
  int32_t *plan = NULL;
  size_t plan_length = 0;
  if (!typed_array_arg(env, argv[3], napi_int32_array, (void **)&plan, &plan_length) ||
      plan_length % 4 != 0 || plan_length == 0) {
    return throw_error(env, "gatherConcat: plan must be an Int32Array of 4 integers per field");
  }
  int64_t fields = (int64_t)(plan_length / 4), row_length = 0;
  uint8_t *base = (uint8_t *)data;
  for (int64_t f = 0; f < fields; f++) {
    const int32_t *p = plan + 4 * f;
    if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0 || p[0] % 4 != 0 || p[3] % 4 != 0 ||
        (int64_t)p[0] + 4 * (int64_t)p[1] * p[2] > (int64_t)length ||
        (int64_t)p[3] + 4 * rows > (int64_t)length) {
      return throw_error(env, "gatherConcat: a table or id tensor lies outside the buffer");
    }
    row_length += p[2];
    const int32_t *ids = (const int32_t *)(base + p[3]);
    for (int64_t row = 0; row < rows; row++) {
      int32_t id = ids[row];
      if (id < 0 || id >= p[1]) {
        napi_value result, values[3];
        napi_create_array_with_length(env, 3, &result);
        napi_create_int64(env, f, &values[0]);
        napi_create_int64(env, row, &values[1]);
        napi_create_int32(env, id, &values[2]);
        for (uint32_t i = 0; i < 3; i++) napi_set_element(env, result, i, values[i]);
        return result;
      }
    }
  }
  if (out_offset + 4 * rows * row_length > (int64_t)length) {
    return throw_error(env, "gatherConcat: the output lies outside the buffer");
  }
  float *out = (float *)(base + out_offset);
  for (int64_t row = 0; row < rows; row++) {
    float *target = out + row * row_length;
    for (int64_t f = 0; f < fields; f++) {
      const int32_t *p = plan + 4 * f;
      const int32_t id = ((const int32_t *)(base + p[3]))[row];
      memcpy(target, (const float *)(base + p[0]) + (int64_t)id * p[2], 4 * (size_t)p[2]);
      target += p[2];
    }
  }
  napi_value null_value;
  napi_get_null(env, &null_value);
  return null_value;
}

/*
 * copyBlocks(buffer, plan): strided row copies inside the heap, the work of Concat and SplitV.
 * `plan` (Float64Array) holds six numbers per block: source byte offset, source row stride,
 * target byte offset, target row stride (bytes), rows and bytes per row; each block's rows are
 * copied in order. A block's target may not overlap its source.
 */
static napi_value copy_blocks(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *data = NULL;
  size_t length = 0;
  double *plan = NULL;
  size_t blocks = 0;
  if (!heap_call_args(env, info, 2, argv, "copyBlocks", &data, &length) ||
      !float64_plan_arg(env, argv[1], 6, "copyBlocks: plan must be a Float64Array of 6 numbers per block", &plan,
                        &blocks)) {
    return NULL;
  }
  for (size_t b = 0; b < blocks; b++) {
    int64_t v[6];
    for (int i = 0; i < 6; i++) {
      const double value = plan[6 * b + i];
      if (!(value >= 0 && value <= 9007199254740991.0) || value != (double)(int64_t)value) {
        return throw_error(env, "copyBlocks: plan entries must be non-negative integers");
      }
      v[i] = (int64_t)value;
    }
    const int64_t rows = v[4], run = v[5];
    if (rows == 0 || run == 0) continue;
    const int64_t source_end = v[0] + (rows - 1) * v[1] + run, target_end = v[2] + (rows - 1) * v[3] + run;
    if (source_end > (int64_t)length || target_end > (int64_t)length) {
      return throw_error(env, "copyBlocks: a block lies outside the buffer");
    }
    if (ranges_overlap(v[0], source_end - v[0], v[2], target_end - v[2])) {
      return throw_error(env, "copyBlocks: a block's target overlaps its source");
    }
  }
  uint8_t *base = (uint8_t *)data;
  for (size_t b = 0; b < blocks; b++) {
    const int64_t source = (int64_t)plan[6 * b], source_stride = (int64_t)plan[6 * b + 1];
    const int64_t target = (int64_t)plan[6 * b + 2], target_stride = (int64_t)plan[6 * b + 3];
    const int64_t rows = (int64_t)plan[6 * b + 4], run = (int64_t)plan[6 * b + 5];
    if (run == 0) continue;
    for (int64_t row = 0; row < rows; row++) {
      memcpy(base + target + row * target_stride, base + source + row * source_stride, (size_t)run);
    }
  }
  return NULL;
}

/*
 * scatterConcat(buffer, dyOffset, rows, plan): the backward pass of gatherConcat. `plan`
 * (Int32Array) holds four integers per field: byte offset of the field's gradient
 * [tableRows, width], tableRows, width and the byte offset of its int32 ids [rows]. The fields'
 * columns follow one another in the rows of dy [rows, sum of widths]. Each gradient is zeroed,
 * then row r of dy's field columns is added into row ids[r], rows in order (tf.scatterND's sums,
 * in its order). The gradients may not overlap dy, the ids or each other.
 */
static napi_value scatter_concat(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  void *data = NULL;
  size_t length = 0;
  if (!heap_call_args(env, info, 4, argv, "scatterConcat", &data, &length)) return NULL;
  int64_t dy_offset = 0, rows = 0;
  if (napi_get_value_int64(env, argv[1], &dy_offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &rows) != napi_ok || dy_offset < 0 || rows < 0 ||
      dy_offset % 4 != 0) {
    return throw_error(env, "scatterConcat: the dy offset and rows must be non-negative integers");
  }
  int32_t *plan = NULL;
  size_t plan_length = 0;
  if (!typed_array_arg(env, argv[3], napi_int32_array, (void **)&plan, &plan_length) ||
      plan_length % 4 != 0 || plan_length == 0) {
    return throw_error(env, "scatterConcat: plan must be an Int32Array of 4 integers per field");
  }
  const int64_t fields = (int64_t)(plan_length / 4);
  int64_t row_length = 0;
  for (int64_t f = 0; f < fields; f++) row_length += plan[4 * f + 2] > 0 ? plan[4 * f + 2] : 0;
  const int64_t dy_bytes = 4 * rows * row_length;
  if (dy_offset + dy_bytes > (int64_t)length) {
    return throw_error(env, "scatterConcat: dy lies outside the buffer");
  }
  uint8_t *base = (uint8_t *)data;
  for (int64_t f = 0; f < fields; f++) {
    const int32_t *p = plan + 4 * f;
    const int64_t grad_bytes = 4 * (int64_t)p[1] * p[2];
    if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0 || p[0] % 4 != 0 || p[3] % 4 != 0 ||
        (int64_t)p[0] + grad_bytes > (int64_t)length || (int64_t)p[3] + 4 * rows > (int64_t)length) {
      return throw_error(env, "scatterConcat: a gradient or id tensor lies outside the buffer");
    }
    if (ranges_overlap(p[0], grad_bytes, dy_offset, dy_bytes) || ranges_overlap(p[0], grad_bytes, p[3], 4 * rows)) {
      return throw_error(env, "scatterConcat: a gradient overlaps dy, the ids or another gradient");
    }
    for (int64_t g = 0; g < f; g++) {
      const int32_t *q = plan + 4 * g;
      const int64_t other_bytes = 4 * (int64_t)q[1] * q[2];
      if (ranges_overlap(p[0], grad_bytes, q[0], other_bytes) || ranges_overlap(p[0], grad_bytes, q[3], 4 * rows) ||
          ranges_overlap(q[0], other_bytes, p[3], 4 * rows)) {
        return throw_error(env, "scatterConcat: a gradient overlaps dy, the ids or another gradient");
      }
    }
    const int32_t *ids = (const int32_t *)(base + p[3]);
    for (int64_t row = 0; row < rows; row++) {
      if (ids[row] < 0 || ids[row] >= p[1]) {
        char message[160];
        snprintf(message, sizeof(message), "scatterConcat: field %lld row %lld has id %d, not in [0, %d)",
                 (long long)f, (long long)row, ids[row], p[1]);
        return throw_error(env, message);
      }
    }
  }
  const float *dy = (const float *)(base + dy_offset);
  int64_t column = 0;
  for (int64_t f = 0; f < fields; f++) {
    const int32_t *p = plan + 4 * f;
    float *gradient = (float *)(base + p[0]);
    const int32_t *ids = (const int32_t *)(base + p[3]);
    const int64_t width = p[2];
    memset(gradient, 0, 4 * (size_t)p[1] * (size_t)width);
    for (int64_t row = 0; row < rows; row++) {
      float *target = gradient + (int64_t)ids[row] * width;
      const float *source = dy + row * row_length + column;
      for (int64_t element = 0; element < width; element++) target[element] += source[element];
    }
    column += width;
  }
  return NULL;
}

/* Loops built twice on x86-64 with glibc (GCC or Clang), for AVX2 and for the baseline; the
 * loader picks one for the CPU. */
#if defined(__x86_64__) && defined(__GLIBC__) && (defined(__GNUC__) || defined(__clang__))
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* The fused Adam update must round every intermediate to float32 like tfjs's kernels do: it is
 * only offered where float expressions are evaluated in float (not x87 extended precision); the
 * build passes -ffp-contract=off so no multiply-add is fused into one rounding. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define MDREC_HAS_ADAM 1

/* The Adam loops are built for AVX2 and for the baseline (VECTOR_CLONES). Both run the same IEEE
 * operations in the same order (divisions and square roots are correctly rounded at any vector
 * width, and -ffp-contract=off keeps multiply-adds apart), so the bits are the same; the AVX2
 * build ran 1.8x faster on 2.47M floats (one thread, EPYC). */

/* One element of the step, in tfjs's op order with float32 roundings. */
struct adam_result {
  float value, first, second;
};
static inline struct adam_result adam_element(float value, float g, float first, float second,
                                              const float constants[8]) {
  struct adam_result r;
  r.first = first * constants[0] + g * constants[1];
  r.second = second * constants[2] + (g * g) * constants[3];
  const float m_hat = r.first / constants[4];
  const float s_hat = r.second / constants[5];
  const float step = m_hat / (sqrtf(s_hat) + constants[6]) * constants[7];
  r.value = step + value;
  return r;
}

/* The loop on its own, so the compiler sees restrict-qualified outputs and vectorises it.
 * constants: beta1, 1 - beta1, beta2, 1 - beta2, 1 - beta1^t, 1 - beta2^t, epsilon, -lr. */
VECTOR_CLONES static void adam_loop(int64_t size, const float *value, const float *gradient, const float *first,
                      const float *second, float *restrict new_value, float *restrict new_first,
                      float *restrict new_second, const float constants[8]) {
  for (int64_t i = 0; i < size; i++) {
    const struct adam_result r = adam_element(value[i], gradient[i], first[i], second[i], constants);
    new_first[i] = r.first;
    new_second[i] = r.second;
    new_value[i] = r.value;
  }
}

/* adam_loop with each output written over its own input (value, first, second moment): every
 * element is read before it is written, with the same operations. */
VECTOR_CLONES static void adam_loop_in_place(int64_t size, float *value, const float *gradient, float *first,
                               float *second, const float constants[8]) {
  for (int64_t i = 0; i < size; i++) {
    const struct adam_result r = adam_element(value[i], gradient[i], first[i], second[i], constants);
    first[i] = r.first;
    second[i] = r.second;
    value[i] = r.value;
  }
}

/* The variables of one adamUpdate / adamUpdateMany call, cut into ADAM_CHUNK-float pieces that
 * the pool claims in order. */
struct adam_job {
  int64_t variables;
  const int64_t *first_piece; /* [variables + 1]: variable v's pieces are first_piece[v] .. first_piece[v + 1] - 1 */
  const int64_t *size;        /* [variables] floats */
  float *const *tensors;      /* [variables * 7]: value, gradient, first, second, new value, new first, new second */
  int in_place;               /* the new value and moments are written over the old ones */
  float constants[8];
  int next; /* atomic: the next piece to claim */
};

/* Jobs of at least this many floats run on the pool (the loop is bound by memory bandwidth, which
 * one core on these VMs does not saturate). */
#define ADAM_PARALLEL_MIN 65536

/* Floats per claimed piece of a parallel update (64 KiB of each of the seven arrays). */
#define ADAM_CHUNK 16384

/* Claims pieces until none is left (pieces start on 64-byte lines). A thread's claims increase,
 * so the variable of each is found by moving forward from the previous one's. */
static void adam_work(const void *context, int self, int threads) {
  (void)self;
  (void)threads;
  const struct adam_job *job = (const struct adam_job *)context;
  int64_t v = 0;
  for (int64_t piece; (piece = claim_next(&job->next)) < job->first_piece[job->variables];) {
    while (piece >= job->first_piece[v + 1]) v++;
    const int64_t begin = (piece - job->first_piece[v]) * ADAM_CHUNK;
    const int64_t end = begin + ADAM_CHUNK < job->size[v] ? begin + ADAM_CHUNK : job->size[v];
    float *const *t = job->tensors + 7 * v;
    if (job->in_place) {
      adam_loop_in_place(end - begin, t[0] + begin, t[1] + begin, t[2] + begin, t[3] + begin, job->constants);
    } else {
      adam_loop(end - begin, t[0] + begin, t[1] + begin, t[2] + begin, t[3] + begin, t[4] + begin,
                t[5] + begin, t[6] + begin, job->constants);
    }
  }
}

/* Reads the eight Adam scalars at argv[0..7] into job->constants; throws and returns 0 when one is
 * not a number. */
static int adam_scalars(napi_env env, const napi_value *argv, const char *name, struct adam_job *job) {
  char message[96];
  for (int i = 0; i < 8; i++) {
    double scalar = 0;
    if (napi_get_value_double(env, argv[i], &scalar) != napi_ok) {
      snprintf(message, sizeof(message), "%s: the Adam scalars must be numbers", name);
      throw_error(env, message);
      return 0;
    }
    job->constants[i] = (float)scalar;
  }
  return 1;
}

/* Runs a job whose pieces are set: on the pool when it is large and has more than one piece, else
 * on the caller's thread. Elementwise, so any split gives the same bits. */
static void run_adam_job(struct adam_job *job) {
  int64_t total = 0;
  for (int64_t v = 0; v < job->variables; v++) total += job->size[v];
  const int64_t pieces = job->first_piece[job->variables];
  const int threads = total >= ADAM_PARALLEL_MIN && pieces > 1 ? __atomic_load_n(&pool_threads, __ATOMIC_RELAXED) : 1;
  const int usable = threads > 1 ? pool_acquire(threads) : 1;
  job->next = 0;
  if (usable > 1) {
    pool_run(adam_work, job, usable);
    pool_release();
  } else {
    adam_work(job, 0, 1);
  }
}

/*
 * adamUpdate(buffer, size, valueOffset, gradientOffset, firstMomentOffset, secondMomentOffset,
 *            newValueOffset, newFirstMomentOffset, newSecondMomentOffset, beta1, oneMinusBeta1,
 *            beta2, oneMinusBeta2, oneMinusAccBeta1, oneMinusAccBeta2, epsilon,
 *            negativeLearningRate)
 * One Adam step over `size` floats, tfjs 4.22's AdamOptimizer op by op in float32:
 *   m' = m * beta1 + g * (1 - beta1)          v' = v * beta2 + g^2 * (1 - beta2)
 *   value' = (m' / (1 - beta1^t)) / (sqrt(v' / (1 - beta2^t)) + epsilon) * -lr + value
 * Offsets in bytes into `buffer` (an ArrayBuffer), the scalars already rounded to float32 by
 * the caller. Every range is bounds-checked first, and the outputs may not overlap each other
 * or the inputs (the inputs may share memory), except in place: when every output offset equals
 * its input's (value, first moment, second moment), the three are updated where they are, and
 * then the gradient may not overlap them.
 */
static napi_value adam_update(napi_env env, napi_callback_info info) {
  napi_value argv[17];
  void *data = NULL;
  size_t length = 0;
  if (!heap_call_args(env, info, 17, argv, "adamUpdate", &data, &length)) return NULL;
  int64_t v[8];
  if (!int64_args(env, argv, 1, 8, v, 0, (int64_t)length,
                  "adamUpdate: size and offsets must be integers in [0, buffer length]"))
    return NULL;
  int64_t size = v[0], bytes = 4 * v[0];
  if (!arrays_fit(v + 1, 7, bytes, length)) {
    return throw_error(env, "adamUpdate: a tensor lies outside the buffer or is not 4-byte aligned");
  }
  /* In place: newValue, newFirst, newSecond (5, 6, 7) at value, first, second (1, 3, 4); then
   * the four inputs may not overlap, else no output may overlap an input or another output. */
  const int in_place = v[5] == v[1] && v[6] == v[3] && v[7] == v[4];
  for (int later = in_place ? 2 : 5; later < (in_place ? 5 : 8); later++) {
    for (int other = 1; other < later; other++) {
      if (size > 0 && v[later] < v[other] + bytes && v[other] < v[later] + bytes) {
        return throw_error(env, in_place
                                    ? "adamUpdate: in place, the value, gradient and moments may not overlap"
                                    : "adamUpdate: an output overlaps an input or another output");
      }
    }
  }
  float *tensors[7];
  for (int i = 0; i < 7; i++) tensors[i] = (float *)((uint8_t *)data + v[1 + i]);
  const int64_t first_piece[2] = {0, (size + ADAM_CHUNK - 1) / ADAM_CHUNK};
  struct adam_job job = {.variables = 1, .first_piece = first_piece, .size = &size, .tensors = tensors, .in_place = in_place};
  if (!adam_scalars(env, argv + 9, "adamUpdate", &job)) return NULL;
  run_adam_job(&job);
  return NULL;
}

/* A byte range of an adamUpdateMany call, for the overlap check. */
struct adam_range {
  int64_t start, end;
  int written;
};

static int compare_adam_range(const void *left, const void *right) {
  const struct adam_range *a = (const struct adam_range *)left, *b = (const struct adam_range *)right;
  return a->start < b->start ? -1 : a->start > b->start ? 1 : 0;
}

/*
 * adamUpdateMany(buffer, plan, beta1, oneMinusBeta1, beta2, oneMinusBeta2, oneMinusAccBeta1,
 *                oneMinusAccBeta2, epsilon, negativeLearningRate)
 * adamUpdate in place for several variables in one call: plan (Float64Array) holds five numbers
 * per variable, [size, valueOffset, gradientOffset, firstMomentOffset, secondMomentOffset]
 * (offsets in bytes into `buffer`). Every range is checked first (in the buffer, 4-byte aligned,
 * no value or moment overlapping any other range of the call; gradients may share memory with
 * each other), so a bad plan changes nothing. The pool claims pieces of all variables at once,
 * so small variables no longer run one by one on the caller's thread; the bits are those of
 * adamUpdate.
 */
static napi_value adam_update_many(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  void *data = NULL;
  size_t length = 0;
  double *plan = NULL;
  size_t plan_entries = 0;
  if (!heap_call_args(env, info, 10, argv, "adamUpdateMany", &data, &length) ||
      !float64_plan_arg(env, argv[1], 5, "adamUpdateMany: plan must be a Float64Array of 5 numbers per variable",
                        &plan, &plan_entries)) {
    return NULL;
  }
  struct adam_job job = {.variables = (int64_t)plan_entries, .in_place = 1};
  if (!adam_scalars(env, argv + 2, "adamUpdateMany", &job)) return NULL;
  const int64_t variables = job.variables;
  char message[200];
  for (int64_t i = 0; i < 5 * variables; i++) {
    const double value = plan[i];
    if (!(value >= 0 && value <= (double)length) || value != (double)(int64_t)value ||
        (i % 5 != 0 && (int64_t)value % 4 != 0)) {
      snprintf(message, sizeof(message), "adamUpdateMany: plan entry %lld (variable %lld) is %g; sizes and offsets must be integers in [0, buffer length], offsets 4-byte aligned", (long long)i, (long long)(i / 5), value);
      return throw_error(env, message);
    }
  }
  struct adam_range *ranges = (struct adam_range *)malloc(sizeof(struct adam_range) * (size_t)(4 * variables + 1));
  if (ranges == NULL) return throw_error(env, "adamUpdateMany: out of memory");
  int64_t used = 0;
  for (int64_t v = 0; v < variables; v++) {
    const int64_t size = (int64_t)plan[5 * v], bytes = 4 * size;
    if (size == 0) continue;
    for (int slot = 0; slot < 4; slot++) {
      const int64_t start = (int64_t)plan[5 * v + 1 + slot];
      if (start + bytes > (int64_t)length) {
        free(ranges);
        snprintf(message, sizeof(message), "adamUpdateMany: tensor %d of variable %lld lies outside the buffer", slot, (long long)v);
        return throw_error(env, message);
      }
      ranges[used++] = (struct adam_range){start, start + bytes, slot != 1};
    }
  }
  qsort(ranges, (size_t)used, sizeof *ranges, compare_adam_range);
  int64_t furthest_written = INT64_MIN, furthest_any = INT64_MIN;
  for (int64_t i = 0; i < used; i++) {
    if (ranges[i].start < furthest_written || (ranges[i].written && ranges[i].start < furthest_any)) {
      free(ranges);
      return throw_error(env, "adamUpdateMany: a value or moment overlaps another tensor of the call");
    }
    if (ranges[i].end > furthest_any) furthest_any = ranges[i].end;
    if (ranges[i].written && ranges[i].end > furthest_written) furthest_written = ranges[i].end;
  }
  free(ranges);
  int64_t *numbers = (int64_t *)malloc(sizeof(int64_t) * (size_t)(2 * variables + 1));
  float **tensors = (float **)malloc(sizeof(float *) * (size_t)(7 * variables + 1));
  if (numbers == NULL || tensors == NULL) {
    free(numbers);
    free(tensors);
    return throw_error(env, "adamUpdateMany: out of memory");
  }
  int64_t *first_piece = numbers, *sizes = numbers + variables + 1;
  first_piece[0] = 0;
  for (int64_t v = 0; v < variables; v++) {
    sizes[v] = (int64_t)plan[5 * v];
    first_piece[v + 1] = first_piece[v] + (sizes[v] + ADAM_CHUNK - 1) / ADAM_CHUNK;
    /* In place: the outputs (4, 5, 6) are the value and the moments (0, 2, 3). */
    for (int slot = 0; slot < 4; slot++) tensors[7 * v + slot] = (float *)((uint8_t *)data + (int64_t)plan[5 * v + 1 + slot]);
    tensors[7 * v + 4] = tensors[7 * v];
    tensors[7 * v + 5] = tensors[7 * v + 2];
    tensors[7 * v + 6] = tensors[7 * v + 3];
  }
  job.first_piece = first_piece;
  job.size = sizes;
  job.tensors = tensors;
  run_adam_job(&job);
  free(numbers);
  free(tensors);
  return NULL;
}
#endif

/*
 * biasActivation(buffer, offset, rows, cols, biasOffset, relu): in place on a row-major
 * [rows, cols] float matrix at `offset` (bytes), adds the [cols] bias at `biasOffset` to every
 * row (biasOffset < 0: no bias) and then, with `relu`, replaces negatives by 0 (NaN stays NaN,
 * as in tfjs's Relu). One pass instead of tfjs's Add and Relu kernels after a matmul.
 */
static napi_value bias_activation(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  void *data = NULL;
  size_t length = 0;
  if (!heap_call_args(env, info, 6, argv, "biasActivation", &data, &length)) return NULL;
  int64_t v[4];
  if (!int64_args(env, argv, 1, 4, v, -1, INT32_MAX,
                  "biasActivation: offsets and sizes must be integers in [0, 2^31)"))
    return NULL;
  bool relu = false;
  napi_get_value_bool(env, argv[5], &relu);
  int64_t offset = v[0], rows = v[1], cols = v[2], bias_offset = v[3];
  if (offset < 0 || rows < 0 || cols < 0 || offset % 4 != 0 || (bias_offset >= 0 && bias_offset % 4 != 0) ||
      offset + 4 * rows * cols > (int64_t)length ||
      (bias_offset >= 0 && bias_offset + 4 * cols > (int64_t)length)) {
    return throw_error(env, "biasActivation: a matrix lies outside the buffer or is misaligned");
  }
  float *c = (float *)((uint8_t *)data + offset);
  const float *bias = bias_offset >= 0 ? (const float *)((uint8_t *)data + bias_offset) : NULL;
  bias_activation_rows(c, rows, cols, cols, bias, relu);
  return NULL;
}

/* Whether the byte ranges [a, a + a_bytes) and [b, b + b_bytes) share a byte. */
static int ranges_overlap(int64_t a, int64_t a_bytes, int64_t b, int64_t b_bytes) {
  return a_bytes > 0 && b_bytes > 0 && a < b + b_bytes && b < a + a_bytes;
}

/* dz = dy * step(out) (tfjs's relu gradient: NaN * 0 stays NaN), four lanes at a time with GCC /
 * Clang vector extensions: plain loops of this compiled to a branch per element on baseline
 * x86-64 (~10 ns each on random signs) instead of vector compares. */
typedef float float4 __attribute__((vector_size(16)));
typedef int32_t int4 __attribute__((vector_size(16)));

static void relu_mask(const float *restrict dy, const float *restrict out, float *restrict dz,
                      int64_t cols) {
  const float4 zero = {0.0f, 0.0f, 0.0f, 0.0f};
  const float4 one = {1.0f, 1.0f, 1.0f, 1.0f};
  int64_t col = 0;
  for (; col + 4 <= cols; col += 4) {
    float4 d, o;
    memcpy(&d, dy + col, sizeof d);
    memcpy(&o, out + col, sizeof o);
    const float4 step = (float4)((int4)(o > zero) & (int4)one); /* 1.0f where out > 0, else 0.0f */
    const float4 result = d * step;
    memcpy(dz + col, &result, sizeof result);
  }
  for (; col < cols; col++) dz[col] = dy[col] * (out[col] > 0.0f ? 1.0f : 0.0f);
}

/* One segment of epilogue_gradient on its own, with restrict-qualified outputs so the masking
 * and the column sums vectorise (the caller checked that nothing overlaps). */
static void epilogue_rows(const float *restrict dy, const float *restrict out, float *restrict dz,
                          float *restrict sum, int64_t rows, int64_t cols) {
  for (int64_t col = 0; col < cols; col++) sum[col] = 0.0f;
  for (int64_t row = 0; row < rows; row++) {
    const float *dy_row = dy + row * cols;
    float *dz_row = dz + row * cols;
    if (out != NULL) {
      const float *out_row = out + row * cols;
      relu_mask(dy_row, out_row, dz_row, cols);
    } else {
      for (int64_t col = 0; col < cols; col++) dz_row[col] = dy_row[col];
    }
    for (int64_t col = 0; col < cols; col++) sum[col] += dz_row[col];
  }
}

/*
 * epilogueGradient(buffer, dyOffset, outOffset, dzOffset, rows, cols, segmentRows, biasGradOffset)
 * The backward pass of `out = act(z + bias_e)` for row-major [rows, cols] matrices, where the
 * rows come in segments (`segmentRows`, an Int32Array summing to rows) and segment e uses bias
 * row e: writes dz = dy where out > 0, else 0 (relu; outOffset < 0: linear, dz = dy) and
 * biasGrad[e] = sum of dz over segment e's rows ([segments, cols]). The outputs may not overlap
 * each other or the inputs.
 */
static napi_value epilogue_gradient(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  void *data = NULL;
  size_t length = 0;
  if (!heap_call_args(env, info, 8, argv, "epilogueGradient", &data, &length)) return NULL;
  int64_t v[5];
  if (!int64_args(env, argv, 1, 5, v, -1, INT32_MAX,
                  "epilogueGradient: offsets and sizes must be integers in [0, 2^31)"))
    return NULL;
  int64_t dy_offset = v[0], out_offset = v[1], dz_offset = v[2], rows = v[3], cols = v[4];
  int32_t *segments = NULL;
  size_t count = 0;
  if (!typed_array_arg(env, argv[6], napi_int32_array, (void **)&segments, &count) || count == 0) {
    return throw_error(env, "epilogueGradient: segmentRows must be a non-empty Int32Array");
  }
  int64_t bias_offset = 0;
  if (napi_get_value_int64(env, argv[7], &bias_offset) != napi_ok) bias_offset = -1;
  int64_t total = 0;
  for (size_t e = 0; e < count; e++) {
    if (segments[e] < 0) return throw_error(env, "epilogueGradient: segmentRows must be non-negative");
    total += segments[e];
  }
  const int64_t bytes = 4 * rows * cols;
  if (total != rows || rows < 0 || cols < 0 || dy_offset < 0 || dz_offset < 0 || bias_offset < 0 ||
      (dy_offset | dz_offset | bias_offset | (out_offset < 0 ? 0 : out_offset)) % 4 != 0 ||
      dy_offset + bytes > (int64_t)length || dz_offset + bytes > (int64_t)length ||
      (out_offset >= 0 && out_offset + bytes > (int64_t)length) ||
      bias_offset + 4 * (int64_t)count * cols > (int64_t)length) {
    return throw_error(env, "epilogueGradient: a matrix lies outside the buffer, is misaligned or the segments do not sum to rows");
  }
  uint8_t *base = (uint8_t *)data;
  const float *dy = (const float *)(base + dy_offset);
  const float *out = out_offset >= 0 ? (const float *)(base + out_offset) : NULL;
  float *dz = (float *)(base + dz_offset);
  float *bias_gradient = (float *)(base + bias_offset);
  if (ranges_overlap(dz_offset, bytes, bias_offset, 4 * (int64_t)count * cols) ||
      ranges_overlap(dz_offset, bytes, dy_offset, bytes) ||
      (out != NULL && ranges_overlap(dz_offset, bytes, out_offset, bytes)) ||
      ranges_overlap(bias_offset, 4 * (int64_t)count * cols, dy_offset, bytes) ||
      (out != NULL && ranges_overlap(bias_offset, 4 * (int64_t)count * cols, out_offset, bytes))) {
    return throw_error(env, "epilogueGradient: the outputs overlap each other or the inputs");
  }
  int64_t row = 0;
  for (size_t e = 0; e < count; e++) {
    epilogue_rows(dy + row * cols, out == NULL ? NULL : out + row * cols, dz + row * cols,
                  bias_gradient + e * cols, segments[e], cols);
    row += segments[e];
  }
  return NULL;
}

/* ---- Noisy gate logits: logits + noise * softplus(noiseLogits), and its gradient factor ---- */

/* Eight lanes at a time with vector extensions (two SSE registers on the baseline, one AVX2
 * register in the AVX2 build): the stock wasm Softplus kernel took ~12 ns per element (scalar
 * exp and log), this ~2.5 ns with the sigmoid, the product and the sum included. */
typedef float float8 __attribute__((vector_size(32)));
typedef int32_t int8v __attribute__((vector_size(32)));
#define SPLAT8(v) \
  { v, v, v, v, v, v, v, v }

/* The helpers take and return vectors through pointers: 32-byte vectors passed by value have
 * an ABI that depends on whether AVX is on, which GCC warns about. */
#define SELECT8(mask, yes, no) ((float8)(((int8v)(yes) & (mask)) | ((int8v)(no) & ~(mask))))

/* e^a for a <= 0, 0 below -87 (where e^a leaves the normal floats): Cephes' expf, i.e. a split by
 * ln 2 into n and r in [-ln2/2, ln2/2] (ln 2 in two parts), a degree-6 polynomial in r and 2^n
 * from the exponent bits. ~1 ulp. */
static inline void exp_nonpositive8(const float8 *in, float8 *result) {
  const float8 a = *in;
  const float8 low = SPLAT8(-87.0f), shifter = SPLAT8(12582912.0f); /* 1.5 * 2^23 */
  const int8v underflow = a < low;
  const float8 x = SELECT8(underflow, low, a);
  const float8 n = (x * (float8)SPLAT8(1.44269504088896341f) + shifter) - shifter; /* round(x / ln 2) */
  const float8 r = (x - n * (float8)SPLAT8(0.693359375f)) - n * (float8)SPLAT8(-2.12194440e-4f);
  float8 p = SPLAT8(1.9875691500e-4f);
  p = p * r + (float8)SPLAT8(1.3981999507e-3f);
  p = p * r + (float8)SPLAT8(8.3334519073e-3f);
  p = p * r + (float8)SPLAT8(4.1665795894e-2f);
  p = p * r + (float8)SPLAT8(1.6666665459e-1f);
  p = p * r + (float8)SPLAT8(5.0000001201e-1f);
  const float8 y = p * (r * r) + r + (float8)SPLAT8(1.0f);
  const int8v scale = (__builtin_convertvector(n, int8v) + 127) << 23; /* the bits of 2^n */
  *result = SELECT8(underflow, (float8)SPLAT8(0.0f), y * (float8)scale);
}

/* log(1 + e) for e in [0, 1]: Cephes' logf of u = 1 + e in [1, 2] (a degree-9 polynomial in
 * u - 1, or in u / 2 - 1 with ln 2 added above sqrt 2), plus (e - (u - 1)) / u for the rounding
 * of u. ~2 ulp. */
static inline void log1p_unit8(const float8 *in, float8 *result) {
  const float8 e = *in;
  const float8 one = SPLAT8(1.0f);
  const float8 u = one + e;
  const float8 correction = (e - (u - one)) / u;
  const int8v above = u > (float8)SPLAT8(1.41421356f);
  const float8 x = SELECT8(above, u * (float8)SPLAT8(0.5f) - one, u - one);
  const float8 k = SELECT8(above, one, (float8)SPLAT8(0.0f));
  const float8 z = x * x;
  float8 y = SPLAT8(7.0376836292e-2f);
  y = y * x - (float8)SPLAT8(1.1514610310e-1f);
  y = y * x + (float8)SPLAT8(1.1676998740e-1f);
  y = y * x - (float8)SPLAT8(1.2420140846e-1f);
  y = y * x + (float8)SPLAT8(1.4249322787e-1f);
  y = y * x - (float8)SPLAT8(1.6668057665e-1f);
  y = y * x + (float8)SPLAT8(2.0000714765e-1f);
  y = y * x - (float8)SPLAT8(2.4999993993e-1f);
  y = y * x + (float8)SPLAT8(3.3333331174e-1f);
  y = y * x * z;
  y += k * (float8)SPLAT8(-2.12194440e-4f);
  y -= (float8)SPLAT8(0.5f) * z;
  *result = (x + y) + k * (float8)SPLAT8(0.693359375f) + correction;
}

/* out = logits + noise * softplus(z) and factor = noise * sigmoid(z) for 8 elements, with
 * softplus(z) = max(z, 0) + log(1 + e^-|z|) and sigmoid(z) = (z > 0 ? 1 : e^-|z|) / (1 + e^-|z|).
 * NaN in z gives NaN in both. */
static inline void noisy_logits8(const float *logits, const float *z, const float *noise, float *out,
                                 float *factor) {
  const float8 zero = SPLAT8(0.0f), one = SPLAT8(1.0f);
  float8 v, l, s;
  memcpy(&v, z, sizeof v);
  memcpy(&l, logits, sizeof l);
  memcpy(&s, noise, sizeof s);
  const int8v positive = v > zero;
  const float8 magnitude = (float8)((int8v)v & (int8v)SPLAT8(0x7fffffff));
  const float8 negative = -magnitude;
  float8 e, log1p_e;
  exp_nonpositive8(&negative, &e);
  log1p_unit8(&e, &log1p_e);
  const float8 softplus = SELECT8(positive, v, zero) + log1p_e;
  const float8 sigmoid = SELECT8(positive, one, e) / (one + e);
  const float8 result = l + s * softplus, gradient_factor = s * sigmoid;
  memcpy(out, &result, sizeof result);
  memcpy(factor, &gradient_factor, sizeof gradient_factor);
}

VECTOR_CLONES static void noisy_logits_loop(const float *logits, const float *z, const float *noise,
                                            float *out, float *factor, int64_t count) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) noisy_logits8(logits + i, z + i, noise + i, out + i, factor + i);
  if (i < count) { /* the last 1-7 elements, padded */
    float in[3][8] = {{0}}, result[2][8];
    const size_t bytes = 4 * (size_t)(count - i);
    memcpy(in[0], logits + i, bytes);
    memcpy(in[1], z + i, bytes);
    memcpy(in[2], noise + i, bytes);
    noisy_logits8(in[0], in[1], in[2], result[0], result[1]);
    memcpy(out + i, result[0], bytes);
    memcpy(factor + i, result[1], bytes);
  }
}

/*
 * noisyGateLogits(buffer, logitsOffset, noiseLogitsOffset, noiseOffset, outOffset, factorOffset,
 * count): for `count` floats at each offset (bytes), out = logits + noise * softplus(noiseLogits)
 * and factor = noise * sigmoid(noiseLogits) (d out / d noiseLogits). The outputs may not overlap
 * each other or the inputs. Accurate to a few float ulps (softplus is 0 below -87).
 */
static napi_value noisy_gate_logits(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  void *data = NULL;
  size_t length = 0;
  if (!heap_call_args(env, info, 7, argv, "noisyGateLogits", &data, &length)) return NULL;
  int64_t v[6];
  if (!int64_args(env, argv, 1, 6, v, 0, INT32_MAX * 4LL,
                  "noisyGateLogits: offsets and count must be integers in [0, 2^33)"))
    return NULL;
  const int64_t count = v[5], bytes = 4 * v[5];
  if (!arrays_fit(v, 5, bytes, length)) {
    return throw_error(env, "noisyGateLogits: an array lies outside the buffer or is misaligned");
  }
  for (int output = 3; output < 5; output++) {
    for (int other = 0; other < 5; other++) {
      if (other != output && ranges_overlap(v[output], bytes, v[other], bytes)) {
        return throw_error(env, "noisyGateLogits: the outputs overlap each other or the inputs");
      }
    }
  }
  uint8_t *base = (uint8_t *)data;
  noisy_logits_loop((const float *)(base + v[0]), (const float *)(base + v[1]), (const float *)(base + v[2]),
                    (float *)(base + v[3]), (float *)(base + v[4]), count);
  return NULL;
}

/* ---- Routed experts: a whole sparse expert pool in one call each way -------------------- */

#define MAX_ROUTED_LAYERS 16

/* A tensor of a routed call: byte offset and length on the heap, and whether it is written. */
struct byte_range {
  int64_t offset, bytes;
  int output;
};

/* One pool of a call of routedExpertsForward / routedExpertsBackward: R routed entries (rows grouped by
 * expert: entry i is batch row rows[i], routing slot slots[i]), N experts of L dense layers. */
struct routed_job {
  int64_t batch, entries, experts, layers, max_width;
  int64_t width[MAX_ROUTED_LAYERS + 1]; /* width[0]: input; width[l + 1]: layer l's output */
  const float *kernel[MAX_ROUTED_LAYERS], *bias[MAX_ROUTED_LAYERS];
  float *hidden[MAX_ROUTED_LAYERS]; /* [R, width[l + 1]] layer outputs (read backward) */
  float *kernel_gradient[MAX_ROUTED_LAYERS], *bias_gradient[MAX_ROUTED_LAYERS];
  int relu[MAX_ROUTED_LAYERS];
  const float *x, *slot_weights; /* x [B, width[0]]; slot_weights [R] (the [B, k] routing weights) */
  float *routed;                 /* [R, width[0]]: x's rows grouped by expert */
  float *out;                    /* forward: [B, width[L]] */
  const float *dy;               /* backward: [B, width[L]] */
  float *dx, *slot_weight_gradient; /* backward: [B, width[0]], [R] */
  float *routed_gradient;        /* backward scratch: dL/d(routed) [R, width[0]] */
  float *scratch_a, *scratch_b;  /* backward scratch, [R, max width] each */
  const int32_t *rows, *slots;
  int64_t *start, *count;
  /* The call's tensors, checked against each other and against the other pools' tensors. */
  struct byte_range ranges[5 + 5 * MAX_ROUTED_LAYERS];
  int range_count;
};

/* Expert e's forward pass on its rows: gather them, then every layer as one product plus bias
 * and activation (the rows stay on one thread, in cache, from layer to layer). */
static void routed_forward_expert(const struct routed_job *job, int64_t e) {
  const int64_t start = job->start[e], count = job->count[e], input_width = job->width[0];
  for (int64_t i = start; i < start + count; i++) {
    memcpy(job->routed + i * input_width, job->x + (int64_t)job->rows[i] * input_width, 4 * (size_t)input_width);
  }
  const float *input = job->routed + start * input_width;
  for (int64_t l = 0; l < job->layers; l++) {
    const int64_t in = job->width[l], out = job->width[l + 1];
    float *output = job->hidden[l] + start * out;
    blas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, (int)count, (int)out, (int)in, 1.0f, input, (int)in,
               job->kernel[l] + e * in * out, (int)out, 0.0f, output, (int)out);
    bias_activation_rows(output, count, out, out, job->bias[l] + e * out, job->relu[l]);
    input = output;
  }
}

/* Expert e's backward pass: the slot-weight gradients and dL/d(output) of its rows, then per
 * layer (last first) the masked gradient dz, the bias and kernel gradients and dz @ W^T. */
static void routed_backward_expert(const struct routed_job *job, int64_t e) {
  const int64_t start = job->start[e], count = job->count[e], layers = job->layers;
  const int64_t output_width = job->width[layers];
  float *gradient = job->scratch_a + start * job->max_width; /* [count, width] rows of dL/dh */
  float *masked = job->scratch_b + start * job->max_width;   /* [count, width] rows of dz */
  const float *last = job->hidden[layers - 1];
  for (int64_t i = start; i < start + count; i++) {
    const float *dy = job->dy + (int64_t)job->rows[i] * output_width;
    const float *h = last + i * output_width;
    const float weight = job->slot_weights[job->slots[i]];
    float *target = gradient + (i - start) * output_width;
    float dot = 0.0f;
    for (int64_t col = 0; col < output_width; col++) {
      dot += dy[col] * h[col];
      target[col] = dy[col] * weight;
    }
    job->slot_weight_gradient[job->slots[i]] = dot;
  }
  for (int64_t l = layers - 1; l >= 0; l--) {
    const int64_t in = job->width[l], out = job->width[l + 1];
    epilogue_rows(gradient, job->relu[l] ? job->hidden[l] + start * out : NULL, masked,
                  job->bias_gradient[l] + e * out, count, out);
    const float *input = l == 0 ? job->routed + start * in : job->hidden[l - 1] + start * in;
    blas_sgemm(ROW_MAJOR, TRANS, NO_TRANS, (int)in, (int)out, (int)count, 1.0f, input, (int)in, masked,
               (int)out, 0.0f, job->kernel_gradient[l] + e * in * out, (int)out);
    float *input_gradient = l == 0 ? job->routed_gradient + start * in : gradient;
    blas_sgemm(ROW_MAJOR, NO_TRANS, TRANS, (int)count, (int)in, (int)out, 1.0f, masked, (int)out,
               job->kernel[l] + e * in * out, (int)out, 0.0f, input_gradient, (int)in);
  }
}

/* The experts with entries of one call, over all its pools: each item is one expert of one pool,
 * most entries first. Each thread claims the next unclaimed item until none is left, so a thread
 * that starts late or is preempted leaves its share to the others; each expert still runs whole
 * on one thread. Pools of one call share the threads: the two big shared experts of CESAA and its
 * small specific ones fill each other's gaps instead of each pool waiting for its slowest expert. */
struct routed_item {
  const struct routed_job *job;
  int64_t expert;
};
struct routed_schedule {
  struct routed_item *items;
  int count;
  int next; /* atomic: the next item to claim */
  /* The pass run on each expert: routed_forward_expert or routed_backward_expert. */
  void (*run_expert)(const struct routed_job *job, int64_t expert);
};

static void routed_work(const void *context, int self, int threads) {
  (void)self;
  (void)threads;
  const struct routed_schedule *schedule = (const struct routed_schedule *)context;
  for (int i; (i = claim_next(&schedule->next)) < schedule->count;)
    schedule->run_expert(schedule->items[i].job, schedule->items[i].expert);
}

/* Runs run_expert over the experts with entries of `pools` jobs, each expert whole on one thread
 * (so the results do not depend on the thread count), the largest first. Returns 0 when out of
 * memory. */
static int routed_run(struct routed_job *jobs, int64_t pools,
                      void (*run_expert)(const struct routed_job *, int64_t)) {
  int64_t experts = 0, multiply_adds = 0;
  for (int64_t p = 0; p < pools; p++) {
    int64_t per_row = 0;
    for (int64_t l = 0; l < jobs[p].layers; l++) per_row += jobs[p].width[l] * jobs[p].width[l + 1];
    experts += jobs[p].experts;
    multiply_adds += per_row * jobs[p].entries;
  }
  struct routed_schedule schedule = {NULL, 0, 0, run_expert};
  schedule.items = (struct routed_item *)malloc(sizeof(struct routed_item) * (size_t)(experts > 0 ? experts : 1));
  if (schedule.items == NULL) return 0;
  /* Insertion sort by entries, stable for equal counts (pool order, then expert order). */
  for (int64_t p = 0; p < pools; p++) {
    for (int64_t e = 0; e < jobs[p].experts; e++) {
      const int64_t entries = jobs[p].count[e];
      if (entries == 0) continue;
      int position = schedule.count++;
      while (position > 0 && schedule.items[position - 1].job->count[schedule.items[position - 1].expert] < entries) {
        schedule.items[position] = schedule.items[position - 1];
        position--;
      }
      schedule.items[position] = (struct routed_item){&jobs[p], e};
    }
  }
  const int threads = __atomic_load_n(&pool_threads, __ATOMIC_RELAXED);
  const int usable = threads > 1 && schedule.count > 1 && multiply_adds >= PARALLEL_MIN_MULTIPLY_ADDS
                         ? pool_acquire(threads < schedule.count ? threads : schedule.count)
                         : 1;
  if (usable > 1) {
    pool_run(routed_work, &schedule, usable);
    pool_release();
  } else {
    routed_work(&schedule, 0, 1);
  }
  free(schedule.items);
  return 1;
}

/* Scratch memory owned by the calling thread and kept between calls: the backward pass's
 * scratch (~5 MB at 2048 routed rows) freed and allocated again each call came back as fresh
 * pages that faulted on first touch, which cost more than the pass's products. */
struct thread_scratch {
  float *data;
  size_t floats;
};
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void free_thread_scratch(void *pointer) {
  struct thread_scratch *scratch = (struct thread_scratch *)pointer;
  free(scratch->data);
  free(scratch);
}

static void create_scratch_key(void) { pthread_key_create(&scratch_key, free_thread_scratch); }

/* At least `floats` floats of the calling thread's scratch (contents undefined); NULL when out of
 * memory. Valid until the thread's next call. */
static float *thread_scratch(size_t floats) {
  pthread_once(&scratch_once, create_scratch_key);
  struct thread_scratch *scratch = (struct thread_scratch *)pthread_getspecific(scratch_key);
  if (scratch == NULL) {
    scratch = (struct thread_scratch *)calloc(1, sizeof *scratch);
    if (scratch == NULL || pthread_setspecific(scratch_key, scratch) != 0) {
      free(scratch);
      return NULL;
    }
  }
  if (scratch->floats < floats) {
    float *grown = (float *)malloc(4 * floats);
    if (grown == NULL) return NULL;
    free(scratch->data);
    scratch->data = grown;
    scratch->floats = floats;
  }
  return scratch->data;
}

/*
 * The arguments of one pool of routedExpertsForward / routedExpertsBackward ([plan, rows, slots,
 * counts]) into `job`; throws and returns 0 when one is out of range. `plan` (Float64Array): seven
 * header numbers [batch, inputWidth, inOffset, slotWeightsOffset, routedOffset, outOffset,
 * slotWeightGradientOffset], then seven per layer [width, kernelOffset, biasOffset,
 * hiddenOffset, relu, kernelGradientOffset, biasGradientOffset]. Forward reads in = x
 * [B, inputWidth] and writes out [B, width of the last layer], routed and the hidden outputs;
 * backward reads in = dy [B, last width], routed and the hidden outputs and writes out = dx
 * [B, inputWidth], the slot-weight, kernel and bias gradients. Offsets in bytes; entries a mode
 * does not use are -1. `call` is the JS array of pool number `pool`; every tensor is checked
 * against the heap (`data`, `length` bytes), and errors read "<name>: pool <pool>: ...".
 */
static int routed_args(napi_env env, const char *call_name, int64_t pool, napi_value call, void *data,
                       size_t length, int backward, struct routed_job *job) {
  char name[96];
  snprintf(name, sizeof(name), "%s: pool %lld", call_name, (long long)pool);
  char message[320];
  napi_value argv[4];
  bool is_array = false;
  uint32_t parts = 0;
  if (napi_is_array(env, call, &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, call, &parts) != napi_ok || parts != 4) {
    snprintf(message, sizeof(message), "%s must be an array [plan, rows, slots, counts]", name);
    throw_error(env, message);
    return 0;
  }
  for (uint32_t i = 0; i < 4; i++) napi_get_element(env, call, i, &argv[i]);
  double *plan = NULL;
  size_t plan_length = 0;
  int32_t *rows = NULL, *slots = NULL, *counts = NULL;
  size_t row_count = 0, slot_count = 0, expert_count = 0;
  if (!typed_array_arg(env, argv[0], napi_float64_array, (void **)&plan, &plan_length) ||
      plan_length < 14 || (plan_length - 7) % 7 != 0 || (plan_length - 7) / 7 > MAX_ROUTED_LAYERS) {
    snprintf(message, sizeof(message), "%s: plan must be a Float64Array of 7 + 7 x layers numbers (1 to %d layers)", name, MAX_ROUTED_LAYERS);
    throw_error(env, message);
    return 0;
  }
  if (!typed_array_arg(env, argv[1], napi_int32_array, (void **)&rows, &row_count) ||
      !typed_array_arg(env, argv[2], napi_int32_array, (void **)&slots, &slot_count) ||
      !typed_array_arg(env, argv[3], napi_int32_array, (void **)&counts, &expert_count) ||
      row_count != slot_count || expert_count == 0) {
    snprintf(message, sizeof(message), "%s: rows and slots must be Int32Arrays of equal length and counts a non-empty Int32Array", name);
    throw_error(env, message);
    return 0;
  }
  int64_t p[7 + 7 * MAX_ROUTED_LAYERS] = {0};
  for (size_t i = 0; i < plan_length; i++) {
    if (!(plan[i] >= -1 && plan[i] <= (double)INT32_MAX * 4) || plan[i] != (double)(int64_t)plan[i]) {
      snprintf(message, sizeof(message), "%s: plan entries must be integers in [-1, 2^33), entry %zu is %g", name, i, plan[i]);
      throw_error(env, message);
      return 0;
    }
    p[i] = (int64_t)plan[i];
  }
  job->batch = p[0];
  job->entries = (int64_t)row_count;
  job->experts = (int64_t)expert_count;
  job->layers = (int64_t)(plan_length - 7) / 7;
  job->width[0] = p[1];
  job->max_width = p[1];
  for (int64_t l = 0; l < job->layers; l++) {
    job->width[l + 1] = p[7 + 7 * l];
    if (job->width[l + 1] > job->max_width) job->max_width = job->width[l + 1];
  }
  int sizes_ok = job->batch >= 0 && job->batch <= INT32_MAX;
  for (int64_t l = 0; l <= job->layers; l++) sizes_ok = sizes_ok && job->width[l] >= 1 && job->width[l] <= 65536;
  if (!sizes_ok) {
    snprintf(message, sizeof(message), "%s: the batch must be in [0, 2^31) and every width in [1, 65536]", name);
    throw_error(env, message);
    return 0;
  }
  const int64_t batch = job->batch, entries = job->entries, experts = job->experts;
  const int64_t input_width = job->width[0], output_width = job->width[job->layers];
  struct byte_range ranges[5 + 5 * MAX_ROUTED_LAYERS];
  int used = 0;
  int64_t offsets[5 + 5 * MAX_ROUTED_LAYERS];
#define ROUTED_RANGE(offset_value, floats, is_output) \
  do {                                                 \
    offsets[used] = (offset_value);                    \
    ranges[used++] = (struct byte_range){(offset_value), 4 * (floats), (is_output)}; \
  } while (0)
  ROUTED_RANGE(p[2], batch * (backward ? output_width : input_width), 0);
  ROUTED_RANGE(p[3], entries, 0);
  ROUTED_RANGE(p[4], entries * input_width, !backward);
  ROUTED_RANGE(p[5], batch * (backward ? input_width : output_width), 1);
  if (backward) ROUTED_RANGE(p[6], entries, 1);
  for (int64_t l = 0; l < job->layers; l++) {
    const int64_t *q = p + 7 + 7 * l, in = job->width[l], out = job->width[l + 1];
    ROUTED_RANGE(q[1], experts * in * out, 0);
    if (!backward) ROUTED_RANGE(q[2], experts * out, 0);
    ROUTED_RANGE(q[3], entries * out, !backward);
    if (backward) {
      ROUTED_RANGE(q[5], experts * in * out, 1);
      ROUTED_RANGE(q[6], experts * out, 1);
    }
    job->relu[l] = q[4] != 0;
  }
#undef ROUTED_RANGE
  for (int i = 0; i < used; i++) {
    if (offsets[i] < 0 || offsets[i] % 4 != 0 || offsets[i] + ranges[i].bytes > (int64_t)length) {
      snprintf(message, sizeof(message), "%s: tensor %d of the plan lies outside the buffer or is misaligned (offset %lld)", name, i, (long long)offsets[i]);
      throw_error(env, message);
      return 0;
    }
  }
  for (int i = 0; i < used; i++) {
    for (int j = 0; j < used; j++) {
      if (i != j && (ranges[i].output || ranges[j].output) &&
          ranges_overlap(ranges[i].offset, ranges[i].bytes, ranges[j].offset, ranges[j].bytes)) {
        snprintf(message, sizeof(message), "%s: tensors %d and %d of the plan overlap (an output may share memory with nothing)", name, i < j ? i : j, i < j ? j : i);
        throw_error(env, message);
        return 0;
      }
    }
  }
  int64_t total = 0;
  for (int64_t e = 0; e < experts; e++) {
    if (counts[e] < 0) {
      snprintf(message, sizeof(message), "%s: counts[%lld] is %d, must be >= 0", name, (long long)e, counts[e]);
      throw_error(env, message);
      return 0;
    }
    total += counts[e];
  }
  if (total != entries) {
    snprintf(message, sizeof(message), "%s: counts sum to %lld, must equal the %lld rows", name, (long long)total, (long long)entries);
    throw_error(env, message);
    return 0;
  }
  /* Every slot exactly once (each slot's weight gradient has one writer); rows in [0, batch). */
  uint8_t *seen = (uint8_t *)calloc((size_t)(entries > 0 ? entries : 1), 1);
  if (seen == NULL) {
    throw_error(env, "routed experts: out of memory");
    return 0;
  }
  for (int64_t i = 0; i < entries; i++) {
    if (rows[i] < 0 || rows[i] >= batch || slots[i] < 0 || slots[i] >= entries || seen[slots[i]]) {
      snprintf(message, sizeof(message), "%s: entry %lld has row %d and slot %d; rows must be in [0, %lld) and slots a permutation of [0, %lld)", name, (long long)i, rows[i], slots[i], (long long)batch, (long long)entries);
      free(seen);
      throw_error(env, message);
      return 0;
    }
    seen[slots[i]] = 1;
  }
  free(seen);
  memcpy(job->ranges, ranges, sizeof(ranges[0]) * (size_t)used);
  job->range_count = used;
  uint8_t *base = (uint8_t *)data;
  job->rows = rows;
  job->slots = slots;
  job->slot_weights = (const float *)(base + p[3]);
  job->routed = (float *)(base + p[4]);
  if (backward) {
    job->dy = (const float *)(base + p[2]);
    job->dx = (float *)(base + p[5]);
    job->slot_weight_gradient = (float *)(base + p[6]);
  } else {
    job->x = (const float *)(base + p[2]);
    job->out = (float *)(base + p[5]);
  }
  for (int64_t l = 0; l < job->layers; l++) {
    const int64_t *q = p + 7 + 7 * l;
    job->kernel[l] = (const float *)(base + q[1]);
    job->bias[l] = backward ? NULL : (const float *)(base + q[2]);
    job->hidden[l] = (float *)(base + q[3]);
    job->kernel_gradient[l] = backward ? (float *)(base + q[5]) : NULL;
    job->bias_gradient[l] = backward ? (float *)(base + q[6]) : NULL;
  }
  job->start = (int64_t *)malloc(sizeof(int64_t) * 2 * (size_t)experts);
  if (job->start == NULL) {
    throw_error(env, "routed experts: out of memory");
    return 0;
  }
  job->count = job->start + experts;
  int64_t start = 0;
  for (int64_t e = 0; e < experts; e++) {
    job->start[e] = start;
    job->count[e] = counts[e];
    start += counts[e];
  }
  return 1;
}

static void free_routed_jobs(struct routed_job *jobs, int64_t pools) {
  for (int64_t p = 0; p < pools; p++) free(jobs[p].start);
  free(jobs);
}

/* Combines of fewer floats than this stay on the calling thread. */
#define COMBINE_PARALLEL_MIN 65536
/* Output floats of each block of rows the pool claims in a parallel combine. */
#define COMBINE_BLOCK_FLOATS 4096

/* Sums the routed entries back into their batch rows: out[b] = sum over row b's entries i, in
 * entry order, of source[i] (times slotWeights[slots[i]] when `weighted`). The pool claims blocks
 * of rows; each row is summed by one thread in the same order, so the bits do not depend on the
 * thread count. */
struct routed_combine {
  const struct routed_job *job;
  const int64_t *row_start;   /* [B + 1]: row b's entries are row_entries[row_start[b] ..] */
  const int32_t *row_entries; /* [R], ascending within each row */
  float *out;
  const float *source;
  int64_t width;
  int64_t rows_per_block; /* rows of each claimed block */
  int weighted;
  int next; /* atomic: the next block to claim */
};

/* Rows [first, last) of a combine. */
static void combine_rows(const struct routed_combine *combine, int64_t first, int64_t last) {
  const struct routed_job *job = combine->job;
  const int64_t width = combine->width;
  for (int64_t row = first; row < last; row++) {
    float *target = combine->out + row * width;
    memset(target, 0, 4 * (size_t)width);
    for (int64_t position = combine->row_start[row]; position < combine->row_start[row + 1]; position++) {
      const int64_t entry = combine->row_entries[position];
      const float *source = combine->source + entry * width;
      if (combine->weighted) {
        const float weight = job->slot_weights[job->slots[entry]];
        for (int64_t col = 0; col < width; col++) target[col] += source[col] * weight;
      } else {
        for (int64_t col = 0; col < width; col++) target[col] += source[col];
      }
    }
  }
}

static void routed_combine_work(const void *context, int self, int threads) {
  const struct routed_combine *combine = (const struct routed_combine *)context;
  const struct routed_job *job = combine->job;
  (void)self;
  (void)threads;
  const int64_t block_rows = combine->rows_per_block;
  for (int64_t block; (block = claim_next(&combine->next)) * block_rows < job->batch;) {
    const int64_t first = block * block_rows;
    const int64_t last = first + block_rows < job->batch ? first + block_rows : job->batch;
    combine_rows(combine, first, last);
  }
}

/* Returns 0 when out of memory. */
static int routed_combine(const struct routed_job *job, float *out, const float *source, int64_t width,
                          int weighted) {
  int64_t *row_start = (int64_t *)calloc((size_t)job->batch + 1, sizeof(int64_t));
  int32_t *row_entries = (int32_t *)malloc(sizeof(int32_t) * (size_t)(job->entries > 0 ? job->entries : 1));
  if (row_start == NULL || row_entries == NULL) {
    free(row_start);
    free(row_entries);
    return 0;
  }
  for (int64_t i = 0; i < job->entries; i++) row_start[job->rows[i] + 1]++;
  for (int64_t row = 0; row < job->batch; row++) row_start[row + 1] += row_start[row];
  int64_t *cursor = (int64_t *)malloc(sizeof(int64_t) * (size_t)(job->batch > 0 ? job->batch : 1));
  if (cursor == NULL) {
    free(row_start);
    free(row_entries);
    return 0;
  }
  memcpy(cursor, row_start, sizeof(int64_t) * (size_t)job->batch);
  for (int64_t i = 0; i < job->entries; i++) row_entries[cursor[job->rows[i]]++] = (int32_t)i;
  free(cursor);
  /* Blocks of ~COMBINE_BLOCK_FLOATS output floats. */
  const int64_t rows_per_block = width >= COMBINE_BLOCK_FLOATS ? 1 : COMBINE_BLOCK_FLOATS / width;
  struct routed_combine combine = {job, row_start, row_entries, out, source, width, rows_per_block, weighted, 0};
  const int threads = __atomic_load_n(&pool_threads, __ATOMIC_RELAXED);
  const int usable = threads > 1 && job->entries * width >= COMBINE_PARALLEL_MIN && job->batch > 1
                         ? pool_acquire(threads)
                         : 1;
  if (usable > 1) {
    pool_run(routed_combine_work, &combine, usable);
    pool_release();
  } else {
    routed_combine_work(&combine, 0, 1);
  }
  free(row_start);
  free(row_entries);
  return 1;
}

/* The pools of one routedExpertsForward / routedExpertsBackward call (`calls`: a non-empty array of
 * [plan, rows, slots, counts], one per pool), each checked on its own and every pool's outputs
 * against every tensor of the other pools. Returns the jobs (free with free_routed_jobs) and their
 * number in *pools, or NULL after throwing. */
static struct routed_job *routed_calls(napi_env env, napi_callback_info info, int backward, int64_t *pools) {
  const char *name = backward ? "routedExpertsBackward" : "routedExpertsForward";
  char message[256];
  napi_value argv[2];
  void *data = NULL;
  size_t length = 0;
  if (!heap_call_args(env, info, 2, argv, name, &data, &length)) return NULL;
  bool is_array = false;
  uint32_t count = 0;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &count) != napi_ok || count == 0 || count > 64) {
    snprintf(message, sizeof(message), "%s: calls must be an array of 1 to 64 pools [plan, rows, slots, counts]", name);
    throw_error(env, message);
    return NULL;
  }
  struct routed_job *jobs = (struct routed_job *)calloc(count, sizeof(struct routed_job));
  if (jobs == NULL) {
    throw_error(env, "routed experts: out of memory");
    return NULL;
  }
  for (uint32_t p = 0; p < count; p++) {
    napi_value call;
    napi_get_element(env, argv[1], p, &call);
    if (!routed_args(env, name, p, call, data, length, backward, &jobs[p])) {
      free_routed_jobs(jobs, p);
      return NULL;
    }
  }
  /* Each pool's outputs against every tensor of the other pools (inputs such as x are shared). */
  for (uint32_t p = 0; p < count; p++) {
    for (uint32_t q = 0; q < count; q++) {
      if (p == q) continue;
      for (int i = 0; i < jobs[p].range_count; i++) {
        if (!jobs[p].ranges[i].output) continue;
        for (int j = 0; j < jobs[q].range_count; j++) {
          if (ranges_overlap(jobs[p].ranges[i].offset, jobs[p].ranges[i].bytes, jobs[q].ranges[j].offset,
                             jobs[q].ranges[j].bytes)) {
            snprintf(message, sizeof(message), "%s: an output of pool %u overlaps tensor %d of pool %u", name, p, j, q);
            free_routed_jobs(jobs, count);
            throw_error(env, message);
            return NULL;
          }
        }
      }
    }
  }
  *pools = count;
  return jobs;
}

/*
 * routedExpertsForward(buffer, calls): pools of experts (MLPs of equal shape within a pool,
 * kernels [N, in, out] and biases [N, out] per layer) on the routed rows of x, each mixed by its
 * routing weights. Per pool, rows / slots (Int32Array [R]) list the routed entries grouped by
 * expert (counts[e] of expert e, in expert order): entry i is batch row rows[i] and routing slot
 * slots[i] (row * k + j of the [B, k] weights). Writes routed[i] = x[rows[i]], per layer l
 * hidden_l = act(input @ W_l[e] + b_l[e]) on each expert's entries, and
 * out[b] = sum of weights[slots[i]] * hidden_last[i] over the entries of row b in entry order.
 * The experts of all pools share the threads. Plan layout: see routed_args.
 */
static napi_value routed_experts_forward(napi_env env, napi_callback_info info) {
  int64_t pools = 0;
  struct routed_job *jobs = routed_calls(env, info, 0, &pools);
  if (jobs == NULL) return NULL;
  int done = routed_run(jobs, pools, routed_forward_expert);
  for (int64_t p = 0; p < pools && done; p++) {
    struct routed_job *job = &jobs[p];
    done = routed_combine(job, job->out, job->hidden[job->layers - 1], job->width[job->layers], 1);
  }
  free_routed_jobs(jobs, pools);
  return done ? NULL : throw_error(env, "routedExpertsForward: out of memory");
}

/*
 * routedExpertsBackward(buffer, calls): per pool, the gradients of routedExpertsForward for
 * dy = dL/d(out): dx (summed over each row's entries in entry order), the slot-weight gradient
 * [R] (dy[row] . hidden_last[i] at slots[i]) and every layer's kernel and bias gradients (zeros
 * for experts without entries). Reads the forward pass's routed and hidden outputs. Plan layout:
 * see routed_args.
 */
static napi_value routed_experts_backward(napi_env env, napi_callback_info info) {
  int64_t pools = 0;
  struct routed_job *jobs = routed_calls(env, info, 1, &pools);
  if (jobs == NULL) return NULL;
  size_t floats = 1;
  for (int64_t p = 0; p < pools; p++)
    floats += (size_t)(jobs[p].entries * jobs[p].width[0]) + 2 * (size_t)(jobs[p].entries * jobs[p].max_width);
  float *scratch = thread_scratch(floats);
  if (scratch == NULL) {
    free_routed_jobs(jobs, pools);
    return throw_error(env, "routedExpertsBackward: out of memory");
  }
  for (int64_t p = 0; p < pools; p++) {
    struct routed_job *job = &jobs[p];
    const size_t routed_floats = (size_t)(job->entries * job->width[0]);
    const size_t scratch_floats = (size_t)(job->entries * job->max_width);
    job->routed_gradient = scratch;
    job->scratch_a = scratch + routed_floats;
    job->scratch_b = job->scratch_a + scratch_floats;
    scratch = job->scratch_b + scratch_floats;
    for (int64_t l = 0; l < job->layers; l++) {
      const int64_t in = job->width[l], out = job->width[l + 1];
      for (int64_t e = 0; e < job->experts; e++) {
        if (job->count[e] > 0) continue;
        memset(job->kernel_gradient[l] + e * in * out, 0, 4 * (size_t)(in * out));
        memset(job->bias_gradient[l] + e * out, 0, 4 * (size_t)out);
      }
    }
  }
  int done = routed_run(jobs, pools, routed_backward_expert);
  for (int64_t p = 0; p < pools && done; p++) {
    struct routed_job *job = &jobs[p];
    done = routed_combine(job, job->dx, job->routed_gradient, job->width[0], 0);
  }
  free_routed_jobs(jobs, pools);
  return done ? NULL : throw_error(env, "routedExpertsBackward: out of memory");
}

/* setThreads(count): threads for products, the caller included (the add-on's pool; OpenBLAS
 * itself stays on one). Ignored for other BLAS libraries, which keep their own threading. */
static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t threads = 1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 1 || napi_get_value_int32(env, argv[0], &threads) != napi_ok || threads < 1) {
    return throw_error(env, "setThreads expects a positive integer");
  }
  /* OpenBLAS stays on one thread; the add-on's own pool spreads products (see pool_threads).
   * Other libraries keep their own threading. */
  if (blas_set_threads != NULL) {
    blas_set_threads(1);
    pthread_mutex_lock(&pool_lock);
    __atomic_store_n(&pool_threads, threads > MAX_POOL_THREADS ? MAX_POOL_THREADS : threads, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&pool_lock);
  }
  return NULL;
}

/* info(): { library, core, threads } (core is OpenBLAS's kernel family, "" for other libraries;
 * threads is -1 when the library cannot tell). */
static napi_value describe(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, library, core, threads;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, blas_name, NAPI_AUTO_LENGTH, &library);
  napi_create_string_utf8(env, blas_core, NAPI_AUTO_LENGTH, &core);
  napi_set_named_property(env, result, "core", core);
  napi_create_int32(env, blas_set_threads != NULL ? pool_threads : -1, &threads);
  napi_set_named_property(env, result, "library", library);
  napi_set_named_property(env, result, "threads", threads);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  if (!open_blas()) {
    char message[1200];
    snprintf(message, sizeof(message), "no BLAS library with cblas_sgemm could be opened (%s)",
             load_error);
    return throw_error(env, message);
  }
  napi_property_descriptor properties[] = {
      {"sgemmBatched", NULL, sgemm_batched, NULL, NULL, NULL, napi_default, NULL},
      {"sgemmGrouped", NULL, sgemm_grouped, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, describe, NULL, NULL, NULL, napi_default, NULL},
      {"biasActivation", NULL, bias_activation, NULL, NULL, NULL, napi_default, NULL},
      {"gatherConcat", NULL, gather_concat, NULL, NULL, NULL, napi_default, NULL},
      {"scatterConcat", NULL, scatter_concat, NULL, NULL, NULL, napi_default, NULL},
      {"copyBlocks", NULL, copy_blocks, NULL, NULL, NULL, napi_default, NULL},
      {"epilogueGradient", NULL, epilogue_gradient, NULL, NULL, NULL, napi_default, NULL},
      {"noisyGateLogits", NULL, noisy_gate_logits, NULL, NULL, NULL, napi_default, NULL},
      {"routedExpertsForward", NULL, routed_experts_forward, NULL, NULL, NULL, napi_default, NULL},
      {"routedExpertsBackward", NULL, routed_experts_backward, NULL, NULL, NULL, napi_default, NULL},
#ifdef MDREC_HAS_ADAM
      {"adamUpdate", NULL, adam_update, NULL, NULL, NULL, napi_default, NULL},
      {"adamUpdateMany", NULL, adam_update_many, NULL, NULL, NULL, napi_default, NULL},
#endif
  };
  napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
