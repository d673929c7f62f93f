// winograd_checks.h — the size checks of the Winograd transforms, shared by both bindings.
#pragma once

#include <string>

#include "../common/checks.h"
#include "winograd.h"

namespace minidl {

// The tile m of F(m×m, 3×3): 2 or 4.
inline void check_winograd_tile(index_t tile, const std::string& op) {
  check(tile == 2 || tile == 4, op + ": tile must be 2 (F(2x2, 3x3)) or 4 (F(4x4, 3x3)), got " +
                                    std::to_string(tile));
}

// The checked geometry of an (N, C, H, W) input padded by (pad_h, pad_w) for a 3×3 kernel and
// tiles of m×m outputs: sizes >= 0, padding in [0, 2] (Winograd's tiles assume the 3×3 fits:
// out >= 1), m in {2, 4}, and the sizes of x and V in int64.
inline WinogradGeometry checked_winograd_geometry(index_t batch, index_t channels, index_t height,
                                                  index_t width, index_t pad_h, index_t pad_w,
                                                  index_t tile, const std::string& op) {
  check(batch >= 0 && channels >= 0 && height >= 0 && width >= 0, op + ": x's sizes must be >= 0");
  check_winograd_tile(tile, op);
  const auto [padded_h, padded_w] = checked_padded_3x3(height, width, pad_h, pad_w, op);
  checked_product({batch, channels, height, width}, op + ": the size of x");
  // Every size make_winograd_geometry forms, checked before it forms them.
  const index_t tiles_h = winograd_tiles(padded_h - 2, tile), tiles_w = winograd_tiles(padded_w - 2, tile);
  checked_product({batch, tiles_h, tiles_w}, op + ": the patches (batch * tiles)");
  checked_product({(tile + 2) * (tile + 2), channels, batch, tiles_h, tiles_w}, op + ": the size of V");
  return make_winograd_geometry(batch, channels, height, width, pad_h, pad_w, tile);
}

// The geometry of an output (N, F, out_h, out_w), checked: sizes >= 0 and M's size in int64.
inline WinogradGeometry checked_winograd_output_geometry(index_t batch, index_t filters,
                                                         index_t out_h, index_t out_w, index_t tile,
                                                         const std::string& op) {
  check(batch >= 0 && filters >= 0 && out_h >= 0 && out_w >= 0, op + ": y's sizes must be >= 0");
  check_winograd_tile(tile, op);
  checked_product({batch, filters, out_h, out_w}, op + ": the size of y");
  checked_add(out_h, 2, op + ": out_h + 2");
  checked_add(out_w, 2, op + ": out_w + 2");
  const index_t tiles_h = winograd_tiles(out_h, tile), tiles_w = winograd_tiles(out_w, tile);
  checked_product({batch, tiles_h, tiles_w}, op + ": the patches (batch * tiles)");
  checked_product({(tile + 2) * (tile + 2), filters, batch, tiles_h, tiles_w}, op + ": the size of M");
  return make_winograd_output_geometry(batch, filters, out_h, out_w, tile);
}

}  // namespace minidl
