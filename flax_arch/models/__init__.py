"""The lecture's architectures as Flax NNX modules, one file per slide family.

:data:`ARCHITECTURES` is the one list of them: every exported architecture under its
command-line name (``flax-arch convert --arch``, the ``arch`` recorded in Flax and
training checkpoints). ``__all__`` is derived from it and from :data:`PARTS`, the building
blocks exported without a name of their own.
"""

from .alexnet import AlexNet
from .autoencoders import AE, VAE
from .convolutions import CausalConv1d, ConvMLP, PaddedConv1d, TransposedConv1d, ValidConv1d
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .embeddings import EmbeddingLookup, OneHotLinear
from .inception import InceptionModule
from .perceptrons import MLP, LinearRegression, LogisticRegression, SoftmaxClassifier
from .qrnn import QRNN, QRNNLayer
from .recurrent import RNNClassifier
from .registry import Architecture, Registry
from .resnet import ResLayer
from .segan import Conv1dGenerator, DownConv1dBlock, UpConv1dBlock
from .unet import UNet, UNetDoubleConv

#: command-line name → :class:`~flax_arch.models.registry.Architecture`
ARCHITECTURES = Registry([
    ("logistic-regression", LogisticRegression),
    ("linear-regression", LinearRegression),
    ("softmax-classifier", SoftmaxClassifier),
    ("mlp", MLP),
    ("valid-conv1d", ValidConv1d),
    ("padded-conv1d", PaddedConv1d),
    ("causal-conv1d", CausalConv1d),
    ("conv-mlp", ConvMLP),
    ("transposed-conv1d", TransposedConv1d),
    ("one-hot-linear", OneHotLinear),
    ("embedding-lookup", EmbeddingLookup),
    ("rnn-classifier", RNNClassifier),
    ("qrnn", QRNN),
    ("ae", AE),
    ("vae", VAE),
    ("alexnet", AlexNet),
    ("inception", InceptionModule),
    ("reslayer", ResLayer),
    ("unet", UNet),
    ("segan-g", Conv1dGenerator),
    ("dcgan-g", DCGANGenerator),
    ("dcgan-d", DCGANDiscriminator),
])

#: building blocks exported as classes, without a command-line name
PARTS = (QRNNLayer, DownConv1dBlock, UpConv1dBlock, UNetDoubleConv)

# the model classes only: ``from flax_arch.models import *`` (and ``flax_arch``'s own
# exports) give the classes; the registry is ``flax_arch.models.ARCHITECTURES``
__all__ = sorted(cls.__name__ for cls in (*ARCHITECTURES.classes(), *PARTS))

del Architecture, Registry
