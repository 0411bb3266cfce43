/* Minimal cblas.h for building libolmo_cpu.so on a machine without OpenBLAS headers (the GPU
 * machine): declares only what cuda/cpu uses. The definitions live in blas_shim.c, which forwards
 * to a BLAS found at run time ($OLMO_BLAS_LIB, e.g. numpy's bundled scipy-openblas). */
#ifndef OLMO_BLAS_SHIM_CBLAS_H
#define OLMO_BLAS_SHIM_CBLAS_H
#ifdef __cplusplus
extern "C" {
#endif
typedef enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 } CBLAS_ORDER;
typedef enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 } CBLAS_TRANSPOSE;
void cblas_sgemm(const enum CBLAS_ORDER Order, const enum CBLAS_TRANSPOSE TransA, const enum CBLAS_TRANSPOSE TransB,
                 const int M, const int N, const int K, const float alpha, const float* A, const int lda,
                 const float* B, const int ldb, const float beta, float* C, const int ldc);
void openblas_set_num_threads(int num_threads);
#ifdef __cplusplus
}
#endif
#endif
