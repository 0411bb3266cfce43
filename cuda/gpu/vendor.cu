/*
 * vendor.cu — finds and dlopen()s libcublasLt and libnccl, resolving the symbols of vendor.h.
 *
 * Search order (first library that loads wins):
 *   1. $OLMO_CUDA_LIB_PATH   colon-separated directories (or full paths of .so files)
 *   2. $LD_LIBRARY_PATH      each directory
 *   3. $CUDA_HOME/lib64, /usr/local/cuda/lib64, /usr/lib/x86_64-linux-gnu
 *   4. Python wheels: <site>/nvidia/<any>/lib for <site> in $OLMO_PY_SITE (colon-separated),
 *      $VIRTUAL_ENV/lib/python3*\/site-packages, /opt/<any>/.venv/lib/python3*\/site-packages,
 *      /opt/<any>/lib/python3*\/site-packages, /usr/local/lib/python3*\/{dist,site}-packages,
 *      /usr/lib/python3/dist-packages, $HOME/.local/lib/python3*\/site-packages
 *   5. the plain soname through the dynamic loader's default search
 * In each directory the files matching lib<name>.so* are tried newest-version first.
 * No math here; a missing library produces an error that lists every place searched.
 */
#include <dlfcn.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string>
#include <vector>
#include <algorithm>
#include "common.cuh"
#include "vendor.h"

OlmoCublasLt g_lt;
OlmoNccl g_nccl;

static void split_colon(const char* s, std::vector<std::string>& out) {
  if (!s) return;
  std::string cur;
  for (const char* p = s;; ++p) {
    if (*p == ':' || *p == 0) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
      if (*p == 0) break;
    } else {
      cur += *p;
    }
  }
}

static void glob_dirs(const std::string& pattern, std::vector<std::string>& out) {
  glob_t g;
  memset(&g, 0, sizeof g);
  if (glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g) == 0) {
    std::vector<std::string> found;
    for (size_t i = 0; i < g.gl_pathc; ++i) found.push_back(g.gl_pathv[i]);
    std::sort(found.begin(), found.end());
    for (auto& f : found) out.push_back(f);
  }
  globfree(&g);
}

static std::vector<std::string> candidate_dirs() {
  std::vector<std::string> dirs;
  split_colon(getenv("OLMO_CUDA_LIB_PATH"), dirs);
  split_colon(getenv("LD_LIBRARY_PATH"), dirs);
  if (const char* ch = getenv("CUDA_HOME")) dirs.push_back(std::string(ch) + "/lib64");
  dirs.push_back("/usr/local/cuda/lib64");
  dirs.push_back("/usr/lib/x86_64-linux-gnu");
  std::vector<std::string> sites;
  split_colon(getenv("OLMO_PY_SITE"), sites);
  if (const char* ve = getenv("VIRTUAL_ENV")) glob_dirs(std::string(ve) + "/lib/python3*/site-packages", sites);
  glob_dirs("/opt/*/.venv/lib/python3*/site-packages", sites);
  glob_dirs("/opt/*/lib/python3*/site-packages", sites);
  glob_dirs("/usr/local/lib/python3*/dist-packages", sites);
  glob_dirs("/usr/local/lib/python3*/site-packages", sites);
  sites.push_back("/usr/lib/python3/dist-packages");
  if (const char* home = getenv("HOME")) glob_dirs(std::string(home) + "/.local/lib/python3*/site-packages", sites);
  for (auto& s : sites) glob_dirs(s + "/nvidia/*/lib", dirs);
  /* de-duplicate, keep order */
  std::vector<std::string> uniq;
  for (auto& d : dirs)
    if (std::find(uniq.begin(), uniq.end(), d) == uniq.end()) uniq.push_back(d);
  return uniq;
}

/* Try to dlopen lib<stem>.so* from the search path. Returns handle or nullptr and fills `searched`. */
static void* find_and_open(const char* stem, const char* soname, char* path_out, size_t path_len,
                           std::string& searched, std::string& dlerrors) {
  std::vector<std::string> dirs = candidate_dirs();
  for (auto& d : dirs) {
    searched += "\n  " + d;
    std::vector<std::string> files;
    /* a direct path to a .so file in OLMO_CUDA_LIB_PATH */
    if (d.size() > 3 && d.find(".so") != std::string::npos && d.find(stem) != std::string::npos) {
      files.push_back(d);
    } else {
      glob_dirs(d + "/" + stem + ".so*", files);
      std::reverse(files.begin(), files.end()); /* .so.13 before .so.12 before .so */
    }
    for (auto& f : files) {
      void* h = dlopen(f.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h) {
        snprintf(path_out, path_len, "%s", f.c_str());
        return h;
      }
      const char* e = dlerror();
      dlerrors += "\n  " + f + ": " + (e ? e : "?");
    }
  }
  searched += std::string("\n  (dynamic loader default) ") + soname;
  void* h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (h) {
    snprintf(path_out, path_len, "%s", soname);
    return h;
  }
  return nullptr;
}

#define OLMO_SYM(table, field, name)                                                         \
  do {                                                                                      \
    *(void**)&table.field = dlsym(table.lib, name);                                         \
    if (!table.field) return olmo_set_error("%s: symbol %s not found", table.path, name);   \
  } while (0)

int olmo_load_cublaslt(void) {
  if (g_lt.lib) return 0;
  std::string searched, dlerrors;
  void* h = nullptr;
  const char* sonames[] = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"};
  h = find_and_open("libcublasLt", sonames[0], g_lt.path, sizeof g_lt.path, searched, dlerrors);
  for (int i = 1; !h && i < 3; ++i) {
    h = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
    if (h) snprintf(g_lt.path, sizeof g_lt.path, "%s", sonames[i]);
  }
  if (!h) {
    return olmo_set_error(
        "cannot load libcublasLt.so (needed for GEMM). Set OLMO_CUDA_LIB_PATH to the folder that "
        "holds it (e.g. <site-packages>/nvidia/cublas/lib). Searched:%s%s%s",
        searched.c_str(), dlerrors.empty() ? "" : "\nload errors:", dlerrors.c_str());
  }
  g_lt.lib = h;
  OLMO_SYM(g_lt, Create, "cublasLtCreate");
  OLMO_SYM(g_lt, Destroy, "cublasLtDestroy");
  OLMO_SYM(g_lt, MatmulDescCreate, "cublasLtMatmulDescCreate");
  OLMO_SYM(g_lt, MatmulDescDestroy, "cublasLtMatmulDescDestroy");
  OLMO_SYM(g_lt, MatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute");
  OLMO_SYM(g_lt, MatrixLayoutCreate, "cublasLtMatrixLayoutCreate");
  OLMO_SYM(g_lt, MatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy");
  OLMO_SYM(g_lt, MatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate");
  OLMO_SYM(g_lt, MatmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy");
  OLMO_SYM(g_lt, MatmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute");
  OLMO_SYM(g_lt, MatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic");
  OLMO_SYM(g_lt, Matmul, "cublasLtMatmul");
  *(void**)&g_lt.GetStatusString = dlsym(h, "cublasLtGetStatusString"); /* optional */
  return 0;
}

int olmo_load_nccl(void) {
  if (g_nccl.lib) return 0;
  std::string searched, dlerrors;
  void* h = find_and_open("libnccl", "libnccl.so.2", g_nccl.path, sizeof g_nccl.path, searched, dlerrors);
  if (!h) {
    return olmo_set_error(
        "cannot load libnccl.so.2 (needed for multi-GPU collectives). Set OLMO_CUDA_LIB_PATH to the "
        "folder that holds it (e.g. <site-packages>/nvidia/nccl/lib). Searched:%s%s%s",
        searched.c_str(), dlerrors.empty() ? "" : "\nload errors:", dlerrors.c_str());
  }
  g_nccl.lib = h;
  OLMO_SYM(g_nccl, GetUniqueId, "ncclGetUniqueId");
  OLMO_SYM(g_nccl, CommInitRank, "ncclCommInitRank");
  OLMO_SYM(g_nccl, CommDestroy, "ncclCommDestroy");
  OLMO_SYM(g_nccl, AllReduce, "ncclAllReduce");
  OLMO_SYM(g_nccl, AllGather, "ncclAllGather");
  OLMO_SYM(g_nccl, ReduceScatter, "ncclReduceScatter");
  OLMO_SYM(g_nccl, Broadcast, "ncclBroadcast");
  OLMO_SYM(g_nccl, GetErrorString, "ncclGetErrorString");
  return 0;
}
