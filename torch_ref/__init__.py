"""The lecture's PyTorch code, mirrored faithfully: same classes, same attribute names,
hence the same state_dict keys. One file per slide family. Where a slide is broken or
garbled (OCR damage, typos), the fix is stated in the class docstring.

Source: "Deep Architectures" (S. Pascual, J. Serrà), both versions of the deck.
"""

from .alexnet import AlexNet
from .autoencoders import AE, VAE
from .convolutions import CausalConv1d, ConvMLP, PaddedConv1d, TransposedConv1d, ValidConv1d
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .embeddings import EmbeddingLookup, OneHotLinear
from .inception import InceptionModule
from .perceptrons import LinearRegression, LogisticRegression, MLP, SoftmaxClassifier
from .qrnn import QRNN, QRNNLayer, fQRNNLayer
from .recurrent import RNNClassifier
from .resnet import ResLayer
from .segan import Conv1dGenerator, DownConv1dBlock, UpConv1dBlock
from .unet import UNet, UNetDoubleConv

__all__ = ["AE", "AlexNet", "CausalConv1d", "Conv1dGenerator", "ConvMLP", "DCGANDiscriminator",
           "DCGANGenerator", "DownConv1dBlock", "EmbeddingLookup", "InceptionModule",
           "LinearRegression", "LogisticRegression", "MLP", "OneHotLinear", "PaddedConv1d",
           "QRNN", "QRNNLayer", "RNNClassifier", "ResLayer", "SoftmaxClassifier",
           "TransposedConv1d", "UNet", "UNetDoubleConv", "UpConv1dBlock", "VAE", "ValidConv1d",
           "fQRNNLayer"]
