"""The weight families and the --weights keywords, torch-free: the commands' --help lists them
without loading torch; weights.py loads them (its module docstring says what each family is).
"""

from __future__ import annotations

FAMILIES = ("torchvision", "keras", "caffe", "gatys")


STANDIN = "hed"  # the one trained non-ImageNet VGG16 to be had here (see weights.py's module docstring)


KEYWORDS = ("auto", "imagenet", "random", STANDIN) + FAMILIES  # what --weights takes besides a file


INPUT_SPACE = {"torchvision": "imagenet", "keras": "caffe", "caffe": "caffe", "gatys": "gatys", STANDIN: "hed"}


# what each --weights keyword means, for help texts; a keyword missing here is still listed (by name)
_KEYWORD_HELP = {
    "auto": "the preset's ImageNet weights if they can be had, else the hed stand-in for a VGG, else random, warned",
    "imagenet": "the preset's own ImageNet weights, else an error",
    "random": "seeded random weights",
    STANDIN: "HED's VGG16 trunk, ImageNet VGG16 fine-tuned for edges; a stand-in, not any source's weights",
}


def weights_help() -> str:
    """--weights' choices for every command's help (nstbench stylize/train, the experiment scripts),
    read from KEYWORDS and FAMILIES so that the lists cannot drift apart or fall behind."""
    own = [f"{k} ({_KEYWORD_HELP[k]})" if k in _KEYWORD_HELP else k for k in KEYWORDS if k not in FAMILIES]
    families = " | ".join(k for k in KEYWORDS if k in FAMILIES) + " (that family's ImageNet weights instead)"
    return " | ".join([*own, families, "PATH (a weights file)"]) + " (default auto)"
