"""minidl.vis — visualizing and understanding CNNs (CS231n lecture 12).

One technique per file; this file only lists the public names.
"""
from .embedding import (PCAResult, TSNEResult, conditional_probabilities, joint_probabilities,
                        kl_divergence_and_gradient, nearest_neighbors, pairwise_squared_distances, pca, tsne)
from .receptive_field import ReceptiveField, layer_geometry, patch_for_unit, receptive_fields
from .texture_nonparametric import gaussian_window, min_error_cut, quilt_texture, synthesize_texture
from .plots import image_grid, plot_embedding, show_filter_grid, show_image_grid
from .activations import Patch, extract_features, max_activating_patches, receptive_field_of
from .saliency import input_gradient, saliency_map, unit_objective
from .guided_backprop import guided_backprop, guided_backprop_image, guided_relu_backward
from .occlusion import OcclusionResult, occlusion_heatmap
from .class_visualization import ClassVisualizationResult, class_visualization
from .fooling import FoolingResult, fooling_image
from .deepdream import DeepDreamResult, deepdream
from .attribution import completeness_gap, grad_cam, guided_grad_cam, integrated_gradients, smoothgrad
from .sanity_check import (RandomizationCheck, model_randomization_check, randomize_weights,
                           spearman_rank_correlation)
from .sanity_attribution import AttributionSanity, attribution_sanity_check, plot_attribution_sanity
from .losses import content_loss, gram_matrix, style_loss, total_variation
from .feature_inversion import InversionResult, invert_features
from .texture_gram import TextureResult, style_targets, synthesize_texture_gram
from .style_transfer import StyleLoss, StyleTransferResult, style_transfer
from .fast_style import style_weights, stylize, train_fast_style
