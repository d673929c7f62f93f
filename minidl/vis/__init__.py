"""minidl.vis — visualizing and understanding CNNs (CS231n lecture 12).

One technique per file; this file only lists the public names.
"""
from .embedding import (PCAResult, TSNEResult, conditional_probabilities, joint_probabilities,
                        kl_divergence_and_gradient, nearest_neighbors, pairwise_squared_distances, pca, tsne)
from .receptive_field import ReceptiveField, layer_geometry, patch_for_unit, receptive_fields
from .texture_nonparametric import gaussian_window, min_error_cut, quilt_texture, synthesize_texture
from .plots import image_grid, plot_embedding, show_filter_grid, show_image_grid
