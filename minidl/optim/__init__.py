"""minidl.optim — optimizers and learning-rate schedules (PyTorch's names and arguments)."""
from . import lr_scheduler
from .lr_scheduler import CosineAnnealingLR, StepLR
from .optimizer import SGD, Adam, AdamW, Optimizer
