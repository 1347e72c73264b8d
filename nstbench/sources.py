"""The sources nstbench reproduces, declared once: each source's report (key, title, seed file,
the numbers it states, how claims cite it). Experiments name the keys in their Spec(sources=...)
to appear in that source's report (report.py); the registry checks the names. Data only: nothing
is imported.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    key: str  # experiments name it in their Spec(sources=...) to appear in this report
    title: str
    seed: str  # the seed report's file in shared/seeds ("" for a paper, which has no seed file)
    own_numbers: tuple[tuple[str, str], ...] = ()  # (what, value) quoted from the source
    paper: str = ""  # the publication (and its official code), for a paper's report
    label: str = ""  # how a claim cites it (claims.py: "002 NYU report (4.2)")


SOURCES = (
    Source(
        "hust",
        "HUST computer-vision course report (Gatys + TV, Johnson fast transfer, timing)",
        "000_09ab2c0b738b0cea.txt",
        (
            ("Vanilla style transfer, 1000 Adam iterations (s)", "49.43"),
            ("Fast style transfer, one forward pass (s)", "0.04"),
            ("Speed-up stated", "1000x"),
            ("TV weights shown", "gamma in {0, 10, 100}"),
        ),
        label="000 HUST computer-vision course report",
    ),
    Source(
        "iitb",
        "IIT Bombay CS725 report (VGG19 vs ResNet50, style-layer table)",
        "001_c2c77009bd561117.txt",
        (
            ("Table 1, VGG19 {1..5}: total / style / content", "9.34e6 / 3.59e6 / 5.74e6"),
            ("Table 1, ResNet50 {1..5}: total / style / content", "1.15e3 / 1.11e3 / 2.98"),
            ("Images", "Mumbai Sea Link with Starry Night"),
        ),
        label="001 IIT Bombay CS725 report",
    ),
    Source(
        "nyu",
        "NYU report (Gatys init; Johnson content layer and batch size)",
        "002_9797a248db40b906.txt",
        (("Best content layer", "relu2_2"), ("Batch size", "no significant difference")),
        label="002 NYU report",
    ),
    Source(
        "yonsei",
        "Yonsei report (summary of Gatys et al. and Johnson et al.)",
        "003_346465eb4c80e994.txt",
        (
            (
                "Content reconstruction (Fig. 3 text)",
                "the higher the layer, the more detailed pixel information is crushed",
            ),
            (
                "alpha/beta ratio (section 1.3)",
                "the larger the ratio, the closer the content; the smaller, the closer the style",
            ),
            (
                "Gatys' method as summarised",
                "VGG (16 conv and 5 pooling layers, no fully connected layers, filters "
                "normalised to mean activation 1); content: squared feature error; style: "
                "Gram matrices over several layers; gradient descent from white noise",
            ),
            (
                "Johnson's method as summarised",
                "image transformation network (stride-2 convolutions down, residual "
                "blocks, stride-1/2 convolutions up), 3 x 256 x 256 input, trained with "
                "VGG-16 feature and style reconstruction losses",
            ),
        ),
        label="003 Yonsei report",
    ),
    Source(
        "gatys2016",
        "Gatys et al., Image Style Transfer Using CNNs (CVPR 2016) and its official code",
        "",
        (
            ("Fig. 1 content reconstructions", "from higher layers colour, texture and exact shape are not preserved"),
            ("alpha/beta in Fig. 3", "1e-4, 1e-3, 1e-2, 1e-1 (rows of the figure)"),
            ("Average vs max pooling", "average pooling improves the gradient flow, slightly more appealing results"),
            ("Optimiser", "L-BFGS, which we found to work best for image synthesis"),
            *(
                (f"Official code (gatys2016-code), printed total loss at iteration {i}", v)
                for i, v in (
                    (50, "1388532.5"),
                    (100, "707860.75"),
                    (150, "538045.4375"),
                    (200, "469374.875"),
                    (250, "433804.625"),
                    (300, "411657.5625"),
                    (350, "395248.25"),
                    (400, "383885.3125"),
                    (450, "375128.75"),
                    (500, "368493.78125"),
                )
            ),
        ),
        paper="L. A. Gatys, A. S. Ecker, M. Bethge, Image Style Transfer Using Convolutional Neural Networks, CVPR "
        "2016; official code leongatys/PytorchNeuralStyleTransfer (NeuralStyleTransfer.ipynb)",
        label="Gatys et al., CVPR 2016",
    ),
    Source(
        "johnson2016",
        "Johnson et al., Perceptual Losses for Real-Time Style Transfer (ECCV 2016)",
        "",
        (
            (
                "Fig. 3 feature reconstructions (VGG-16 relu1_2 .. relu4_3)",
                "higher layers keep content and spatial structure, not colour, texture, exact shape",
            ),
            ("Fig. 5", "one forward pass reaches the Gatys objective of about 50 to 100 L-BFGS iterations"),
            (
                "Table 1 (GTX Titan X)",
                "seconds of 100/300/500 L-BFGS iterations and of one forward pass at 256, 512 "
                "and 1024 px: the source_seconds and source_speedup columns of E10's table1.csv",
            ),
            ("Table 1 speed-up", "about three orders of magnitude at 500 iterations"),
        ),
        paper="J. Johnson, A. Alahi, L. Fei-Fei, Perceptual Losses for Real-Time Style Transfer and "
        "Super-Resolution, ECCV 2016 (arXiv 1603.08155)",
        label="Johnson et al., ECCV 2016",
    ),
    Source(
        "upes",
        "UPES B.Tech report (appendix code: Gatys with Adam)",
        "004_cd6a8acf84783d6c.txt",
        (
            ("Total loss at step 1600 (ImageNet VGG19)", "3145412.75"),
            ("Total loss at step 2000 (ImageNet VGG19)", "2023719.125"),
        ),
        label="004 UPES B.Tech report",
    ),
)


def cited(key: str) -> str:
    """How claims cite the source `key` (its label)."""
    return next(s.label for s in SOURCES if s.key == key)
