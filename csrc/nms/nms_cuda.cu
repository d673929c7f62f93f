// nms_cuda.cu — NMS on the GPU: one thread per (row, column block) word, then one block walks
// the rows. The word is the shared body (nms.h), called on a copy of the column block that the
// 64 threads of a CUDA block first stage in shared memory.
#include "../common/cuda_check.h"
#include "nms.h"
#include "nms_cuda.h"

namespace minidl {

template <typename T>
__global__ void nms_mask_kernel(NmsBoxes<T> boxes, index_t n, T threshold, std::uint64_t* mask,
                                index_t words) {
  const index_t row_block = blockIdx.y, col_block = blockIdx.x;
  if (col_block < row_block) return;  // columns before the rows: the keep pass never reads them
  const int rows = static_cast<int>(min(static_cast<index_t>(kNmsWord), n - row_block * kNmsWord));
  const int cols = static_cast<int>(min(static_cast<index_t>(kNmsWord), n - col_block * kNmsWord));

  __shared__ T x1[kNmsWord], y1[kNmsWord], x2[kNmsWord], y2[kNmsWord], area[kNmsWord];
  __shared__ index_t label[kNmsWord];
  const int t = threadIdx.x;
  if (t < cols) {
    const index_t j = col_block * kNmsWord + t;
    x1[t] = boxes.x1[j], y1[t] = boxes.y1[j], x2[t] = boxes.x2[j], y2[t] = boxes.y2[j];
    area[t] = boxes.area[j];
    if (boxes.label) label[t] = boxes.label[j];
  }
  __syncthreads();
  if (t < rows) {
    const index_t i = row_block * kNmsWord + t;
    const NmsBoxes<T> staged{x1, y1, x2, y2, area, boxes.label ? label : nullptr};
    mask[i * words + col_block] =
        nms_suppression_word(boxes, i, staged, col_block * kNmsWord, cols, threshold);
  }
}

// One block walks the row blocks in order. For block w every thread reads the same `removed`
// word and replays the 64 keep decisions (identical work, so no communication); then the
// threads split the later words among themselves to OR in the kept rows' words.
__global__ void nms_keep_kernel(const std::uint64_t* mask, index_t n, index_t words,
                                std::uint64_t* removed, unsigned char* keep) {
  for (index_t w = 0; w < words; ++w) {
    __syncthreads();  // removed[w] is final: every OR into it happened in earlier iterations
    const int size = static_cast<int>(min(static_cast<index_t>(kNmsWord), n - w * kNmsWord));
    std::uint64_t word = removed[w], kept = 0;
    for (int k = 0; k < size; ++k) {
      if (word >> k & 1) continue;
      kept |= std::uint64_t(1) << k;
      word |= mask[(w * kNmsWord + k) * words + w];
    }
    for (int k = threadIdx.x; k < size; k += blockDim.x) keep[w * kNmsWord + k] = kept >> k & 1;
    for (index_t c = w + 1 + threadIdx.x; c < words; c += blockDim.x) {
      std::uint64_t acc = removed[c];
      for (int k = 0; k < size; ++k)
        if (kept >> k & 1) acc |= mask[(w * kNmsWord + k) * words + c];
      removed[c] = acc;
    }
  }
}

template <typename T>
static void launch_mask(std::uintptr_t x1, std::uintptr_t y1, std::uintptr_t x2, std::uintptr_t y2,
                        std::uintptr_t area, std::uintptr_t label, index_t n, double iou_threshold,
                        std::uintptr_t mask, cudaStream_t s) {
  const NmsBoxes<T> boxes{reinterpret_cast<const T*>(x1), reinterpret_cast<const T*>(y1),
                          reinterpret_cast<const T*>(x2), reinterpret_cast<const T*>(y2),
                          reinterpret_cast<const T*>(area), reinterpret_cast<const index_t*>(label)};
  const index_t words = (n + kNmsWord - 1) / kNmsWord;
  const dim3 grid(static_cast<unsigned int>(words), static_cast<unsigned int>(words));
  nms_mask_kernel<T><<<grid, kNmsWord, 0, s>>>(boxes, n, threshold_in<T>(iou_threshold),
                                                reinterpret_cast<std::uint64_t*>(mask), words);
}

void nms_mask_cuda(std::uintptr_t x1, std::uintptr_t y1, std::uintptr_t x2, std::uintptr_t y2,
                   std::uintptr_t area, std::uintptr_t label, std::int64_t n, double iou_threshold,
                   int dtype_code, std::uintptr_t mask, std::uintptr_t stream) {
  if (n <= 0) return;
  if ((n + kNmsWord - 1) / kNmsWord > 65535)
    throw std::runtime_error("nms: too many boxes for one launch (at most 65535 * 64)");
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (dtype_code == 0)
    launch_mask<float>(x1, y1, x2, y2, area, label, n, iou_threshold, mask, s);
  else
    launch_mask<double>(x1, y1, x2, y2, area, label, n, iou_threshold, mask, s);
  cuda_check(cudaGetLastError(), "nms_mask");
}

void nms_keep_cuda(std::uintptr_t mask, std::int64_t n, std::uintptr_t removed, std::uintptr_t keep,
                   std::uintptr_t stream) {
  if (n <= 0) return;
  const index_t words = (n + kNmsWord - 1) / kNmsWord;
  nms_keep_kernel<<<1, kThreads, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const std::uint64_t*>(mask), n, words,
      reinterpret_cast<std::uint64_t*>(removed), reinterpret_cast<unsigned char*>(keep));
  cuda_check(cudaGetLastError(), "nms_keep");
}

}  // namespace minidl
