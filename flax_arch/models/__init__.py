"""The lecture's architectures as Flax NNX modules, one file per slide family."""

from .alexnet import AlexNet
from .autoencoders import AE, VAE
from .convolutions import CausalConv1d, ConvMLP, PaddedConv1d, TransposedConv1d, ValidConv1d
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .embeddings import EmbeddingLookup, OneHotLinear
from .inception import InceptionModule
from .perceptrons import MLP, LinearRegression, LogisticRegression, SoftmaxClassifier
from .qrnn import QRNN, QRNNLayer
from .recurrent import RNNClassifier
from .resnet import ResLayer
from .segan import Conv1dGenerator, DownConv1dBlock, UpConv1dBlock
from .unet import UNet, UNetDoubleConv

__all__ = ["AE", "AlexNet", "CausalConv1d", "Conv1dGenerator", "ConvMLP", "DCGANDiscriminator",
           "DCGANGenerator", "DownConv1dBlock", "EmbeddingLookup", "InceptionModule",
           "LinearRegression", "LogisticRegression", "MLP", "OneHotLinear", "PaddedConv1d",
           "QRNN", "QRNNLayer", "RNNClassifier", "ResLayer", "SoftmaxClassifier",
           "TransposedConv1d", "UNet", "UNetDoubleConv", "UpConv1dBlock", "VAE", "ValidConv1d"]
