"""minidl.models — small reference networks (each file one model; this file only imports)."""
from .classifier import FEATURE_LAYER, ShapesClassifier, load_shapes_classifier
from .vgg import CONTENT_LAYER, STYLE_LAYERS, VGGFeatures
from .vgg16 import VGG16Features, vgg16_features
from .transform_net import TransformNet
from .segmentation import FCN, PatchClassifier, segment, sliding_window_segment
from .localization import LocalizationLoss, Localizer, localize
from .pose import KeypointLoss, PoseRegressor, predict_keypoints, soft_argmax
from .pretrained import load_pretrained
