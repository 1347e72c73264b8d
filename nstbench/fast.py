"""Fast style transfer (Johnson et al. 2016): its API in one namespace.

The code lives by concept: the fast presets beside the Gatys ones (presets.py: FastPreset,
FAST_HUST, FAST_JOHNSON2016, FAST_JOHNSON2016_CODE, FAST_PYTORCH_EXAMPLES, TRAIN_PROFILES,
override_fast), the training images (data.py), the perceptual loss (perceptual.py), training
(training.py: train_transformer, train_and_apply), stylising and ONNX export (inference.py), the networks
(transformer.py); the `nstbench train` / `nstbench apply` handlers are in cli.py.
"""

from .data import COCO_HELP, IMAGE_EXTENSIONS, ImageFolderData  # noqa: F401
from .inference import export_onnx, run_network, stylize_images  # noqa: F401
from .perceptual import PerceptualLoss  # noqa: F401
from .presets import (  # noqa: F401
    FAST_HUST,
    FAST_JOHNSON2016,
    FAST_JOHNSON2016_CODE,
    FAST_PRESETS,
    FAST_PYTORCH_EXAMPLES,
    TRAIN_PROFILES,
    FastPreset,
    TrainProfile,
    get_fast_preset,
    network_config,
    override_fast,
)
from .training import (  # noqa: F401
    LOSS_COLUMNS,
    TrainedRun,
    check_training_size,
    total_steps,
    train_and_apply,
    train_and_apply_unit,
    train_transformer,
)
