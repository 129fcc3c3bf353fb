/* bench/mpi/pingpong_mpi.c — the Open MPI reference for `cohort bench pingpong`.
 *
 * The same measurement as bench/pingpong.cpp, with MPI_Send / MPI_Recv on
 * MPI_COMM_WORLD ranks 0 and 1: per size a warm-up, then R repetitions of
 * `iters` round trips; the median repetition gives the one-way latency (half
 * a round trip) and the bandwidth (size / one-way time). Rank 0 prints:
 *
 *   pingpong size=1024 iters=1000 latency_us=12.345 bandwidth_MBps=82.95
 *
 * A reference program only: it is built against Open MPI and never linked
 * into cohort.
 *
 *   mpirun -n 2 --mca pml ob1 --mca btl tcp,self bench_pingpong_mpi [--sizes ..] [--iters N] [--reps R]
 */
#include <mpi.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG 7
#define MAX_SIZES 64

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

/* "64K", "1M", "4096" -> bytes; returns 0 on nonsense. */
static int parse_size(const char* s, size_t* out) {
  char* end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s) return 0;
  if (*end == 'K' || *end == 'k') v <<= 10, ++end;
  else if (*end == 'M' || *end == 'm') v <<= 20, ++end;
  if (*end != '\0' || v > INT_MAX) return 0; /* MPI counts are int */
  *out = (size_t)v;
  return 1;
}

static void bad_sizes(const char* arg) {
  fprintf(stderr, "pingpong_mpi: bad --sizes '%s' (want e.g. 0,8,1K,1M)\n", arg);
  MPI_Abort(MPI_COMM_WORLD, 2);
}

/* Fewer round trips for big messages, as in bench/pingpong.cpp. */
static long iters_for(size_t size, long base) {
  if (size <= 65536) return base;
  long n = (long)((double)base * 65536.0 / (double)size);
  return n < 3 ? 3 : n;
}

int main(int argc, char** argv) {
  size_t sizes[MAX_SIZES];
  int nsizes = 0;
  long base_iters = 1000;
  int reps = 5;
  MPI_Init(&argc, &argv);
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--iters") == 0) {
      base_iters = atol(argv[i + 1]);
      if (base_iters < 1) base_iters = 1;
    } else if (strcmp(argv[i], "--reps") == 0) {
      reps = atoi(argv[i + 1]);
      if (reps < 1) reps = 1;
    } else if (strcmp(argv[i], "--sizes") == 0) {
      const char* p = argv[i + 1];
      while (*p) {
        char item[32];
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item || nsizes == MAX_SIZES) bad_sizes(argv[i + 1]);
        memcpy(item, p, len);
        item[len] = '\0';
        if (!parse_size(item, &sizes[nsizes++])) bad_sizes(argv[i + 1]);
        p += len;
        if (*p == ',') ++p;
      }
    }
  }
  if (nsizes == 0) {
    sizes[nsizes++] = 0; /* the default of `cohort bench pingpong` too */
    for (size_t s = 1; s <= ((size_t)16 << 20); s *= 4) sizes[nsizes++] = s;
  }

  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 2) {
    if (rank == 0) fprintf(stderr, "pingpong_mpi: needs exactly 2 ranks, got %d\n", size);
    MPI_Finalize();
    return 2;
  }
  size_t max_size = 1;
  for (int i = 0; i < nsizes; ++i)
    if (sizes[i] > max_size) max_size = sizes[i];
  char* buf = malloc(max_size);
  double* rep_us = malloc(sizeof(double) * (size_t)reps);
  if (!buf || !rep_us) MPI_Abort(MPI_COMM_WORLD, 1);
  memset(buf, 0x5a, max_size); /* touch every page before timing */
  const int peer = 1 - rank;

  if (rank == 0) {
    printf("# openmpi pingpong: ranks 0 <-> 1, %d repetitions per size, median\n", reps);
    fflush(stdout);
  }
  for (int k = 0; k < nsizes; ++k) {
    const int n = (int)sizes[k];
    const long iters = iters_for(sizes[k], base_iters);
    const long warm = iters / 10 > 1 ? iters / 10 : 1;
    for (int r = -1; r < reps; ++r) { /* r == -1: the warm-up */
      const long count = r < 0 ? warm : iters;
      double start = MPI_Wtime();
      for (long i = 0; i < count; ++i) {
        if (rank == 0) {
          MPI_Send(buf, n, MPI_BYTE, peer, TAG, MPI_COMM_WORLD);
          MPI_Recv(buf, n, MPI_BYTE, peer, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
          MPI_Recv(buf, n, MPI_BYTE, peer, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
          MPI_Send(buf, n, MPI_BYTE, peer, TAG, MPI_COMM_WORLD);
        }
      }
      if (r >= 0) rep_us[r] = (MPI_Wtime() - start) * 1e6 / (double)iters;
    }
    if (rank != 0) continue;
    qsort(rep_us, (size_t)reps, sizeof(double), cmp_double);
    const double one_way = rep_us[reps / 2] / 2;
    printf("pingpong size=%zu iters=%ld latency_us=%.3f bandwidth_MBps=%.3f\n", sizes[k], iters,
           one_way, (double)sizes[k] / one_way);
    fflush(stdout);
  }
  free(buf);
  free(rep_us);
  MPI_Finalize();
  return 0;
}
