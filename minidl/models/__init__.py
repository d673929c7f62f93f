"""minidl.models — small reference networks (each file one model; this file only imports)."""
from .classifier import FEATURE_LAYER, ShapesClassifier, load_shapes_classifier
from .vgg import CONTENT_LAYER, STYLE_LAYERS, VGGFeatures
from .transform_net import TransformNet
