"""The sources nstbench reproduces, declared once: each source's report (key, title, seed file,
the numbers it states, how claims cite it) and its presets, Gatys and fast transfer, each value
citing where it comes from. Experiments name the keys in their Spec(sources=...) to appear in that
source's report (report.py); the registry checks the names; presets.py lists the presets by name
from here (`nstbench presets`, every --help). A new source is one entry of SOURCES (its presets may
be written inside it) and its scenario in tests/bands.json. Data only (specs.py's dataclasses).

Seeds: 000 = HUST report (E1), 002 = NYU report (E4), 001 = IIT Bombay report (E5),
004 = UPES report and its appendix code (E7); gatys2016 / gatys2016-code: the Gatys et al. paper and
its official code (EXPERIMENTS.md, "The Gatys et al. presets"); hust-code: the HUST repository's Gatys
notebook, an earlier version than its report. EXPERIMENTS.md is the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

from .specs import (
    GATYS_STYLE_LAYERS,
    JOHNSON_STYLE_LAYERS,
    FastPreset,
    GatysPreset,
    LossSpec,
    OptimizerSpec,
    Resize,
)


@dataclass(frozen=True)
class Source:
    key: str  # experiments name it in their Spec(sources=...) to appear in this report
    title: str
    seed: str  # the seed report's file in shared/seeds ("" for a paper, which has no seed file)
    own_numbers: tuple[tuple[str, str], ...] = ()  # (what, value) quoted from the source
    paper: str = ""  # the publication (and its official code), for a paper's report
    label: str = ""  # how a claim cites it (claims.py: "002 NYU report (4.2)")
    gatys: tuple[GatysPreset, ...] = ()  # its Gatys presets (`nstbench stylize --preset`)
    fast: tuple[FastPreset, ...] = ()  # its fast-transfer presets (`nstbench train --preset`)


# ---------------------------------------------------------------------------------------------
# Gatys et al.'s optimisation: each source's settings (`nstbench stylize`)
# ---------------------------------------------------------------------------------------------


HUST = GatysPreset(
    name="hust",
    source="000 HUST report section 3.1 (code: khanhnn20042002/cv20222, TensorFlow)",
    backbone="vgg19",  # "Network: VGG19 pretrained on the ImageNet dataset"
    weights="keras",  # the notebook: tf.keras.applications.VGG19(include_top=False, weights="imagenet")
    # The loss formulas are the report's; what the report leaves open (the pixel space, clipping,
    # Adam's beta1 and epsilon) comes from the repository's Gatys notebook (`hust-code`, In[20]-In[32]).
    space="unit",  # notebook In[20]: a [0, 1] RGB tf.Variable; In[32]: clip_by_value(image, 0, 1)
    # code resize(): long side to 512, new size tf.cast(int32) (truncated), tf.image.resize
    # bilinear without antialias, cast back to uint8
    content_resize=Resize("long", 512, "bilinear_tf", size_rounding="floor"),
    style_resize=Resize("long", 512, "bilinear_tf", size_rounding="floor"),
    loss=LossSpec(
        content_layers=(("relu4_2", 1.0),),  # "conv4_2", weight 1; Keras block4_conv2 is post-ReLU
        style_layers=tuple((n, 0.2) for n in GATYS_STYLE_LAYERS),  # conv1_1..conv5_1 at 0.2 each
        content_mode="half_sum",  # report eq.: 1/2 sum (F - P)^2
        gram_norm="none",  # report: G = sum_k F_ik F_jk
        style_mode="gatys",  # report: E_l = 1/(4 N^2 M^2) sum (G - A)^2
        alpha=1.0,  # "alpha = 1"
        beta=1e3,  # "beta = 10^3"
        gamma=0.0,  # E1 sweeps gamma; the report shows 0, 10, 100
        tv_mode="l1_sum",  # report: l_tv = sum |y[i+1,j]-y[i,j]| + |y[i,j+1]-y[i,j]|
    ),
    # report: "Adam optimizer: learning rate = 0.01"; notebook In[22]: Keras Adam beta_1=0.90, epsilon=1e-1
    # (epsilon outside the bias correction: adam_tf). Until issue 12 this assumed the TF tutorial's beta1 0.99.
    optimizer=OptimizerSpec("adam_tf", lr=0.01, betas=(0.9, 0.999), eps=0.1),
    steps=1000,  # "Iterations = 1000"
    init="content",  # "Use the content image instead of the white noise image"
    clamp=True,  # notebook In[32]: clip_by_value(image, 0, 1) after each step
)

# The HUST repository's Gatys notebook, an earlier version than the report (beta 1e4, no TV term): the
# cells are cited by their execution count, In[n], "last" for the final, unnumbered one.
HUST_CODE = GatysPreset(
    name="hust-code",
    source="000 HUST code: khanhnn20042002/cv20222@265a671, style_transfer.ipynb (TensorFlow)",
    backbone="vgg19",  # In[12]: tf.keras.applications.vgg19.VGG19(include_top=False, weights="imagenet")
    weights="keras",  # In[12]: Keras' ImageNet file (vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5)
    space="unit",  # In[20]: image = tf.Variable(cast(load_image('cat.jpg'), float32)); image / 255
    # In[3] resize(): long side to max_dim 512, tf.cast(new_size, int32) truncates, tf.image.resize
    # (bilinear, no antialias), tf.cast to uint8; In[7]: the style keeps its own shape
    content_resize=Resize("long", 512, "bilinear_tf", size_rounding="floor"),
    style_resize=Resize("long", 512, "bilinear_tf", size_rounding="floor"),
    loss=LossSpec(
        content_layers=(("relu4_2", 1.0),),  # In[14]: ['block4_conv2'] (a Keras conv output is post-ReLU)
        style_layers=tuple((n, 1.0) for n in GATYS_STYLE_LAYERS),  # In[14]: block1_conv1 .. block5_conv1
        content_mode="mean",  # In[21]: tf.reduce_mean(tf.square(F - P)), / len(content) = 1 layer
        gram_norm="hw",  # In[16]: tf.einsum('bhwi,bhwj->bij', x, x) / x.shape[1] / x.shape[2]
        style_mode="mean",  # In[21]: tf.reduce_mean(tf.square(G - A))
        style_reduce="mean",  # In[21]: style_loss / len(style)
        alpha=1.0,  # In[32]: loss_function(outputs, content, style, 1, 10**4)
        beta=1e4,  # In[32]: beta = 10**4
        gamma=0.0,  # In[21]: total_loss = alpha * content_loss + beta * style_loss, no TV term
    ),
    # In[22]: tf.keras.optimizers.Adam(learning_rate=0.01, beta_1=0.90, epsilon=1e-1), beta_2 its default
    # 0.999; Keras' Adam adds epsilon outside the bias correction (adam_tf)
    optimizer=OptimizerSpec("adam_tf", lr=0.01, betas=(0.9, 0.999), eps=0.1),
    steps=1000,  # last cell: steps = 1000; for step in range(steps): train_step(image)
    init="content",  # In[20]: the variable starts as the content image
    clamp=True,  # In[32]: image.assign(tf.clip_by_value(image, 0.0, 1.0)) after each update
    # In[10], In[11], In[18] vs In[20], In[32]: the targets pass preprocess() (BGR, / 255), the optimised
    # image goes in raw; the two are not fed alike. Kept as the notebook ran it (see gatys.Feed).
    feed="hust_code",
)

NYU = GatysPreset(
    name="nyu",
    source="002 NYU report section 4.1 (PyTorch; settings as the official PyTorch neural-style tutorial)",
    backbone="vgg19",  # section 3.2: "A pre-trained VGG network with 19 layers"
    weights="torchvision",  # the PyTorch tutorial: models.vgg19(pretrained=True) (IMAGENET1K_V1)
    space="unit",  # tutorial: images in [0, 1], a Normalization module inside the network
    content_resize=Resize("short", 512, "bilinear"),  # tutorial: transforms.Resize(imsize), 512 on a GPU
    style_resize=None,  # tutorial asserts style and content have the same size
    loss=LossSpec(
        # tutorial's conv_4 / conv_1..conv_5 count convolutions: conv_4 = conv2_2; pre-ReLU
        # (the tutorial swaps in out-of-place ReLUs), so these are real conv outputs
        content_layers=(("conv2_2", 1.0),),
        style_layers=tuple((n, 1.0) for n in ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1")),
        content_mode="mean",  # F.mse_loss
        gram_norm="chw",  # tutorial gram_matrix: G.div(a * b * c * d)
        style_mode="mean",  # F.mse_loss(G, A)
        alpha=1.0,  # content_weight=1
        beta=1e6,  # style_weight=1000000
    ),
    # tutorial: optim.LBFGS([input_img]) with its defaults, driven by `while run[0] <= num_steps:
    # optimizer.step(closure)` (run[0] counts closure calls): 320 evaluations for num_steps 300
    optimizer=OptimizerSpec("lbfgs", lr=1.0, lbfgs_loop="while"),
    steps=300,  # tutorial: num_steps=300
    init="content",  # E4 compares content with white noise (torch.randn, as in the tutorial)
    clamp=True,  # tutorial: input_img.data.clamp_(0, 1) in the closure
)

_IITB_COMMON = dict(
    source="001 IIT Bombay report (Keras/TF eager code; EXPERIMENTS.md E5)",
    weights="keras",  # tf.keras.applications vgg19.VGG19 / resnet50.ResNet50(weights="imagenet")
    space="caffe",  # vgg19/resnet50 preprocess_input: BGR, 0..255, ImageNet mean subtracted
    content_resize=Resize("long", 512, "lanczos"),  # load_img: long side 512, PIL ANTIALIAS, round()
    style_resize=Resize("long", 512, "lanczos"),
    optimizer=OptimizerSpec(
        "adam_tf", lr=5.0, betas=(0.99, 0.999), eps=0.1
    ),  # AdamOptimizer(5, beta1=0.99, epsilon=1e-1)
    steps=1000,  # "number of iterations = 1000"
    init="content",  # "We initialize the base input image as the content image itself"
    clamp=True,  # clip_by_value(init_image, -mean, 255 - mean) after each step
    # the code keeps the lowest-loss image: `if loss < best_loss: best_img = init_image` after the
    # update and clip, pairing the loss measured before a step with the image after it (kept)
    keep_best=True,
    keep_best_as="after_update",
)

IITB_VGG19 = GatysPreset(
    name="iitb-vgg19",
    backbone="vgg19",
    loss=LossSpec(
        content_layers=(("block5_conv2", 1.0),),  # Keras name; post-ReLU (relu5_2)
        style_layers=tuple((f"block{b}_conv1", 1.0) for b in range(1, 6)),
        content_mode="mean",  # tf.reduce_mean(tf.square(F - P))
        gram_norm="hw",  # gram / n, n = H*W positions
        style_mode="mean",  # tf.reduce_mean(tf.square(G - A))
        style_reduce="mean",  # weight_per_style_layer = 1 / num_style_layers
        alpha=1e5,  # "VGG19: alpha = 10^5"
        beta=1e2,  # "beta = 10^2"
    ),
    **_IITB_COMMON,
)

IITB_RESNET50 = GatysPreset(
    name="iitb-resnet50",
    backbone="keras_resnet50",  # resnet50.ResNet50: Keras' ResNet50 v1 (not torchvision's v1.5)
    loss=LossSpec(
        content_layers=(("conv5_block3_3_bn", 1.0),),  # report section 3
        style_layers=tuple(
            (n, 1.0)
            for n in (
                "conv2_block2_2_bn",
                "conv3_block1_0_bn",
                "conv3_block1_0_conv",
                "conv4_block1_2_bn",
                "conv5_block1_3_bn",
            )
        ),
        content_mode="mean",
        gram_norm="hw",
        style_mode="mean",
        style_reduce="mean",
        alpha=1.0,  # "ResNet50: alpha = 1"
        beta=1e5,  # "beta = 10^5"
    ),
    **_IITB_COMMON,
)

UPES = GatysPreset(
    name="upes",
    source="004 UPES report, Appendix I (PyTorch)",
    backbone="vgg19",  # models.vgg19(pretrained=True).features
    weights="torchvision",  # pretrained=True: torchvision's IMAGENET1K_V1
    space="imagenet",  # the target tensor is the Normalize()d image itself; nothing is clipped
    # load_image(max_size=400): Resize(400) scales the *short* side to 400 when the long side > 400
    # (Resize(int) semantics); smaller images get Resize(long side) (images.Resize "short_capped").
    content_resize=Resize("short_capped", 400, "bilinear"),
    style_resize=None,  # load_image(style, shape=content.shape[-2:])
    loss=LossSpec(
        # The appendix taps features '0','5','10','19','21','28' (conv1_1 ... conv5_1, conv4_2), but
        # torchvision's ReLU(inplace=True) right after each conv overwrites the stored tensor, so
        # what the code really uses are the post-ReLU maps. We name them as they are.
        content_layers=(("relu4_2", 1.0),),
        style_layers=(("relu1_1", 1.0), ("relu2_1", 0.75), ("relu3_1", 0.2), ("relu4_1", 0.2), ("relu5_1", 0.2)),
        content_mode="mean",  # torch.mean((T - C)**2)
        gram_norm="none",  # torch.mm(tensor, tensor.t())
        style_mode="upes",  # w * torch.mean((G - A)**2) / (d * h * w)
        alpha=1.0,  # content_weight = 1
        beta=1e6,  # style_weight = 1e6
    ),
    optimizer=OptimizerSpec("adam", lr=0.003),  # optim.Adam([target], lr=0.003)
    steps=2000,  # steps = 2000
    init="content",  # target = content.clone()
    clamp=False,
    print_every=400,  # show_every = 400
)

GATYS2016 = GatysPreset(
    name="gatys2016",
    source="Gatys, Ecker, Bethge: Image Style Transfer Using Convolutional Neural Networks, CVPR 2016",
    backbone="vgg19",  # sec. 2: "the 16 convolutional and 5 pooling layers of the 19-layer VGG network"
    weights="gatys",  # sec. 2: "a normalized version" of VGG19 (released as vgg_conv.pth with their code)
    pooling="avg",  # sec. 2: "replacing the maximum pooling operation by average pooling"
    space="caffe",  # the normalised Caffe VGG19 takes BGR 0..255 minus the ImageNet mean
    # sec. 3: images of 512 px; the paper gives no resize rule, so its code's Scale(512) (short side)
    content_resize=Resize("short", 512, "bilinear"),
    style_resize=Resize("short", 512, "bilinear"),
    loss=LossSpec(
        # sec. 3: content conv4_2; the responses F are taken after the rectification (Caffe's in-place
        # ReLU makes the conv4_2 blob post-ReLU; the official code names it r42)
        content_layers=(("relu4_2", 1.0),),
        style_layers=tuple((n, 0.2) for n in GATYS_STYLE_LAYERS),  # conv1_1..conv5_1, w_l = 1/5
        content_mode="half_sum",  # eq. 1: 1/2 sum (F - P)^2
        gram_norm="none",  # eq. 3: G_ij = sum_k F_ik F_jk
        style_mode="gatys",  # eq. 4: E_l = 1/(4 N_l^2 M_l^2) sum (G - A)^2
        alpha=1.0,  # alpha / beta = 1e-3 (Fig. 3 / sec. 3)
        beta=1e3,
    ),
    optimizer=OptimizerSpec("lbfgs", lr=1.0),  # sec. 2: "we use L-BFGS"
    steps=500,  # the paper gives no iteration count: 500 as its official code (gatys2016-code)
    init="noise",  # sec. 2: "starting from a white noise image"
    clamp=False,
)

GATYS2016_CODE = GatysPreset(
    name="gatys2016-code",
    source="Gatys et al. official PyTorch code: leongatys/PytorchNeuralStyleTransfer, NeuralStyleTransfer.ipynb",
    backbone="vgg19",  # class VGG: conv1_1 .. conv5_4 with F.relu
    weights="gatys",  # vgg.load_state_dict(torch.load(model_dir + 'vgg_conv.pth'))
    pooling="max",  # VGG(pool='max') is the default it builds
    # prep: ToTensor, RGB -> BGR, subtract [0.40760392, 0.45795686, 0.48501961], times 255: the caffe
    # space (those means are 103.939, 116.779, 123.68 / 255; equal to float32 rounding)
    space="caffe",
    content_resize=Resize("short", 512, "bilinear"),  # transforms.Scale(512): short side, PIL bilinear
    style_resize=Resize("short", 512, "bilinear"),  # the same prep for the style: not resized to the content
    loss=LossSpec(
        content_layers=(("relu4_2", 1.0),),  # content_layers = ['r42'], content_weights = [1e0]
        # style_layers r11..r51, style_weights = [1e3/n**2 for n in [64,128,256,512,512]]
        style_layers=tuple((n, 1e3 / c**2) for n, c in zip(GATYS_STYLE_LAYERS, (64, 128, 256, 512, 512))),
        content_mode="mean",  # nn.MSELoss()(F, P)
        gram_norm="hw",  # GramMatrix: bmm(F, F^T), G.div_(h*w)
        style_mode="mean",  # GramMSELoss: nn.MSELoss()(G, A), a mean over C^2
        alpha=1.0,  # the weights sit in the layer lists: loss = sum(weights[a] * loss_fns[a](...))
        beta=1.0,
    ),
    # optim.LBFGS([opt_img]) with defaults, `while n_iter[0] <= max_iter: optimizer.step(closure)`,
    # n_iter counted in the closure: max_iter 500 runs 520 evaluations
    optimizer=OptimizerSpec("lbfgs", lr=1.0, lbfgs_loop="while"),
    steps=500,  # max_iter = 500
    init="content",  # opt_img = Variable(content_image.data.clone(), requires_grad=True)
    clamp=False,  # nothing is clipped while optimising (postp clips for display only)
    print_every=50,  # show_iter = 50
)


# ---------------------------------------------------------------------------------------------
# Fast style transfer (Johnson et al.): how each source trains its transformer (`nstbench train`)
# ---------------------------------------------------------------------------------------------


FAST_HUST = FastPreset(
    name="hust",
    source="000 FAST_HUST report sec. 3.2; code khanhnn20042002/cv20222 fast-style-transfer.ipynb",
    network="hust",
    backbone="vgg19",  # notebook: tf.keras.applications.VGG19(weights="imagenet")
    weights="keras",  # Keras applications' ImageNet VGG19 (the Caffe weights, BGR 0..255 input)
    loss=LossSpec(
        content_layers=(("relu4_2", 1.0),),  # CONTENT_LAYERS = ['block4_conv2'] (Keras conv output is post-ReLU)
        style_layers=tuple((n, 0.2) for n in GATYS_STYLE_LAYERS),  # block1..5_conv1; style_loss divides by 5 layers
        content_mode="mean",  # 2 * tf.nn.l2_loss(F - P) / num_elements = mean (F - P)^2
        gram_norm="chw",  # gram_matrix: einsum('bijc,bijd->bcd') / (H * W * C)
        style_mode="mean",  # 2 * tf.nn.l2_loss(G - A) / num_elements = mean (G - A)^2
        alpha=2.0,  # CONTENT_WEIGHT = 2
        beta=40.0,  # STYLE_WEIGHT = 40
        gamma=200.0,  # TOTAL_VARIATION_WEIGHT = 200
        tv_mode="l1_mean",  # tf.image.total_variation(img) / H / W (L1, summed over channels)
    ),
    tv_batch="sum",  # tf.reduce_sum over the batch for TV, while content and style are batch means
    lr=1e-3,  # LEARNING_RATE = 1e-3 (tf.keras Adam; its epsilon 1e-7 vs torch's 1e-8 is ignored here)
    batch=8,  # BATCH_SIZE = 8
    epochs=2,  # EPOCHS = 2
    size=256,  # get_image(path, (256, 256, 3)): skimage resize to 256 x 256, no crop
    data_resize="exact",
    shuffle=False,  # glob order, no shuffling (nstbench: sorted order)
    style_size=None,  # get_image(STYLE_PATH): the style image at its own size
    checkpoint_every=1000,  # SAVE_PERIOD = 1000
)

FAST_JOHNSON2016 = FastPreset(
    name="johnson2016",
    source="Johnson et al. 2016 sec. 3 and 4.1; loss weights from Johnson's fast-neural-style train.lua defaults",
    network="johnson2016",
    backbone="vgg16",  # sec. 3: "16-layer VGG network pretrained on ImageNet"
    weights="caffe",  # Johnson's code trains against the Caffe VGG16 (models/vgg16.t7 from the Caffe model zoo)
    loss=LossSpec(
        content_layers=(("relu2_2", 1.0),),  # sec. 4.1: feature reconstruction loss at relu2_2
        # sec. 4.1: relu1_2, relu2_2, relu3_3, relu4_3. The paper gives no lambda_s; the layer weights
        # 5 / C_l^2 are its code's style_weights 5.0 restated for the paper's loss: the code takes the
        # mean of (G - A)^2 over the C^2 entries (johnson2016-code), the paper's eq. 4 their sum
        style_layers=tuple((n, 5.0 / c**2) for n, c in zip(JOHNSON_STYLE_LAYERS, (64, 128, 256, 512))),
        content_mode="mean",  # eq. 2: 1/(C H W) ||phi(y_hat) - phi(y)||^2
        gram_norm="chw",  # eq. 3: G = psi psi^T / (C H W)
        style_mode="frobenius",  # eq. 4: squared Frobenius norm of G(y_hat) - G(y_s)
        alpha=1.0,  # the paper gives no lambda_c: the code's content_weights 1.0
        beta=1.0,  # lambda_s sits in the layer weights above
        gamma=1e-6,  # sec. 4.1: TV strength "between 1e-6 and 1e-4", cross-validated per style; 1e-6 = code default
        tv_mode="squared_sum",  # Johnson's TV regulariser: squared neighbour differences
    ),
    tv_batch="mean",
    lr=1e-3,  # sec. 4.1: Adam, learning rate 1e-3
    batch=4,  # sec. 4.1: "batch size of 4"
    epochs=2,
    steps=40000,  # sec. 4.1: "40,000 iterations, giving roughly two epochs over the training data"
    size=256,  # sec. 4.1: "resize each of the 80k training images to 256 x 256"
    data_resize="exact",
    shuffle=True,
    style_size=256,  # not in the paper; Johnson's code default style_image_size 256 (uncertain)
    checkpoint_every=1000,
)

FAST_PYTORCH_EXAMPLES = FastPreset(
    name="pytorch-examples",
    source="pytorch/examples fast_neural_style/neural_style/neural_style.py (train defaults)",
    network="pytorch-examples",
    backbone="vgg16",  # vgg.Vgg16: relu1_2, relu2_2, relu3_3, relu4_3
    weights="torchvision",  # vgg.py: models.vgg16(pretrained=True)
    loss=LossSpec(
        content_layers=(("relu2_2", 1.0),),  # mse_loss(features_y.relu2_2, features_x.relu2_2)
        style_layers=tuple((n, 1.0) for n in JOHNSON_STYLE_LAYERS),  # summed over the four layers
        content_mode="mean",  # torch.nn.MSELoss()
        gram_norm="chw",  # utils.gram_matrix: bmm / (ch * h * w)
        style_mode="mean",  # MSELoss(gram_y, gram_style)
        alpha=1e5,  # --content-weight 1e5
        beta=1e10,  # --style-weight 1e10
        gamma=0.0,  # no TV term
    ),
    lr=1e-3,  # --lr 1e-3
    batch=4,  # --batch-size 4
    epochs=2,  # --epochs 2
    size=256,  # --image-size 256
    data_resize="center_crop",  # transforms.Resize(256) then CenterCrop(256)
    shuffle=False,  # DataLoader(ImageFolder) without shuffle: sorted order (its last partial batch is kept; dropped here)
    style_size=None,  # --style-size None: the style image as it is
    checkpoint_every=2000,  # --checkpoint-interval 2000
)

FAST_JOHNSON2016_CODE = FastPreset(
    name="johnson2016-code",
    source="jcjohnson/fast-neural-style train.lua defaults and fast_neural_style/*.lua",
    network="johnson2016-code",  # -arch c9s1-32,d64,d128,R128 x5,u64,u32,c9s1-3, instance norm, reflect-start
    backbone="vgg16",  # -loss_network models/vgg16.t7
    weights="caffe",  # vgg16.t7: the Caffe VGG16 loaded with loadcaffe (BGR 0..255 minus the mean)
    loss=LossSpec(
        # -content_layers 16 of the loadcaffe VGG16: relu3_3 (not the paper's relu2_2)
        content_layers=(("relu3_3", 1.0),),  # -content_weights 1.0
        # -style_layers 4,9,16,23 = relu1_2, relu2_2, relu3_3, relu4_3; -style_weights 5.0 for each
        style_layers=tuple((n, 1.0) for n in JOHNSON_STYLE_LAYERS),
        content_mode="mean",  # ContentLoss: nn.MSECriterion (mean over N C H W)
        gram_norm="chw",  # GramMatrix: `normalize or true` is always true, output:div(C * H * W)
        style_mode="mean",  # StyleLoss: nn.MSECriterion(G, A), the target expanded over the batch
        alpha=1.0,
        beta=5.0,  # the 5.0 of every style layer
        gamma=1e-6,  # -tv_strength 1e-6
        tv_mode="squared_half_interior",  # TotalVariation.lua's gradient (see losses.py)
    ),
    tv_batch="sum",  # TotalVariation adds each image's gradient, while the MSE criteria average over N
    lr=1e-3,  # -learning_rate 1e-3 (optim.adam, its default betas and epsilon)
    batch=4,  # -batch_size 4
    epochs=2,
    steps=40000,  # -num_iterations 40000
    size=256,  # -h5_file data/ms-coco-256.h5: COCO resized to 256 x 256
    data_resize="exact",
    shuffle=True,
    style_size=256,  # -style_image_size 256: image.scale(style, 256), the long side
    checkpoint_every=1000,  # -checkpoint_every 1000
)


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
        gatys=(HUST, HUST_CODE),
        fast=(FAST_HUST,),
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
        gatys=(IITB_VGG19, IITB_RESNET50),
    ),
    Source(
        "nyu",
        "NYU report (Gatys init; Johnson content layer and batch size)",
        "002_9797a248db40b906.txt",
        (("Best content layer", "relu2_2"), ("Batch size", "no significant difference")),
        label="002 NYU report",
        gatys=(NYU,),
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
        gatys=(GATYS2016, GATYS2016_CODE),
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
        # pytorch/examples' fast_neural_style reimplements Johnson et al.'s method; it has no report of its own
        fast=(FAST_JOHNSON2016, FAST_PYTORCH_EXAMPLES, FAST_JOHNSON2016_CODE),
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
        gatys=(UPES,),
    ),
)


def cited(key: str) -> str:
    """How claims cite the source `key` (its label)."""
    return next(s.label for s in SOURCES if s.key == key)
