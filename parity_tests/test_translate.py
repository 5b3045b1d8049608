"""``flax_arch.from_torch`` against torch: translated modules compute what torch computes.

* Architectures written here (a ResNet with downsampling shortcuts, a U-Net joined with
  ``F.pad``/``torch.cat``, a transformer-encoder classifier, a BiLSTM tagger, a model made
  of functional ops): forward outputs, gradients with respect to inputs and every
  parameter, BatchNorm running statistics after a train-mode call, and three optimizer
  steps, in float64 (1e-12) and float32 (1e-5), through the parity toolkit
  (:func:`flax_arch.parity.assert_parity`).
* Every torch_ref module torch.fx can trace, built and fed as its registry case does; the
  slide QRNN (a Python loop over time) gets the clear error instead.
* Drop-in use: ``nnx.jit``, an optax training loop, ``train()``/``eval()``, and the weights
  exported back to torch.
* Errors: an unsupported op, data-dependent control flow; each names node, op and line.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as F
from flax import nnx

import flax_arch
from flax_arch.interop import to_torch_state_dict
from flax_arch.parity import Case, assert_parity, run_case
from flax_arch.parity.registry import all_cases
from flax_arch.translate import TranslationError, from_torch


# ------------------------------------------------------------------ test architectures

class BasicBlock(tnn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:  # the downsampling shortcut
            self.downsample = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False),
                                             tnn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(tnn.Module):
    def __init__(self, widths=(8, 16, 32), classes=5):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(widths[0])
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(cin, w, 1 if i == 0 else 2))
            cin = w
        self.layers = tnn.Sequential(*blocks)
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(cin, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layers(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class Down(tnn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.pool = tnn.MaxPool2d(2)
        # no bias in front of BatchNorm: its gradient is 0 in exact arithmetic, so the
        # frameworks' rounding noise would be all that an optimizer step compares
        self.conv = tnn.Sequential(tnn.Conv2d(cin, cout, 3, padding=1, bias=False),
                                   tnn.BatchNorm2d(cout),
                                   tnn.ReLU(), tnn.Conv2d(cout, cout, 3, padding=1),
                                   tnn.ReLU())

    def forward(self, x):
        return self.conv(self.pool(x))


class Up(tnn.Module):
    def __init__(self, cin, cout, bilinear=False):
        super().__init__()
        self.bilinear = bilinear
        if not bilinear:
            self.up = tnn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
        self.conv = tnn.Sequential(tnn.Conv2d(cin if not bilinear else cin + cin // 2, cout,
                                              3, padding=1), tnn.ReLU())

    def forward(self, x1, x2):
        if self.bilinear:
            x1 = F.interpolate(x1, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x1 = self.up(x1)
        # odd sizes: pad the upsampled map to the skip connection's size
        dy = x2.size()[2] - x1.size()[2]
        dx = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class UNet(tnn.Module):
    def __init__(self, bilinear=False):
        super().__init__()
        self.inc = tnn.Sequential(tnn.Conv2d(2, 8, 3, padding=1), tnn.ReLU())
        self.down1, self.down2 = Down(8, 16), Down(16, 32)
        self.up1 = Up(32, 16, bilinear)
        self.up2 = Up(16, 8, bilinear)
        self.outc = tnn.Conv2d(8, 3, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        return self.outc(self.up2(self.up1(x3, x2), x1))


class TransformerClassifier(tnn.Module):
    def __init__(self, vocab=50, d=16, heads=2, layers=2, classes=3, max_len=12, dropout=0.0):
        super().__init__()
        self.embed = tnn.Embedding(vocab, d, padding_idx=0)
        self.pos = tnn.Parameter(0.02 * torch.randn(1, max_len, d))
        layer = tnn.TransformerEncoderLayer(d, heads, 32, dropout, batch_first=True)
        self.encoder = tnn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = tnn.LayerNorm(d)
        self.head = tnn.Linear(d, classes)
        self.scale = math.sqrt(d)

    def forward(self, tokens):
        x = self.embed(tokens) * self.scale + self.pos[:, :tokens.size(1)]
        x = self.encoder(x)
        return self.head(self.norm(x.mean(dim=1)))


class BiLSTMTagger(tnn.Module):
    def __init__(self, vocab=40, emb=8, hidden=12, tags=5):
        super().__init__()
        self.embed = tnn.Embedding(vocab, emb)
        self.lstm = tnn.LSTM(emb, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.out = tnn.Linear(2 * hidden, tags)

    def forward(self, tokens):
        h, _ = self.lstm(self.embed(tokens))
        return F.log_softmax(self.out(h), dim=-1)


class Functional(tnn.Module):
    """Only parameters and functional ops: conv, pooling, view, matmul, chunk/cat,
    reductions, activations, layer norm, dropout reading self.training."""

    def __init__(self):
        super().__init__()
        self.w1 = tnn.Parameter(0.3 * torch.randn(6, 3, 3, 3))
        self.b1 = tnn.Parameter(0.1 * torch.randn(6))
        self.w2 = tnn.Parameter(0.2 * torch.randn(10, 24))
        self.g = tnn.Parameter(1 + 0.1 * torch.randn(10))
        self.register_buffer("shift", 0.1 * torch.randn(10))

    def forward(self, x):
        h = F.max_pool2d(F.relu(F.conv2d(x, self.w1, self.b1, padding=1)), 2)  # (N, 6, 4, 4)
        a, b = torch.chunk(h, 2, dim=1)
        h = torch.cat([F.gelu(a), torch.tanh(b) * torch.sigmoid(a)], 1)
        h = F.avg_pool2d(h, 2).view(h.size(0), -1)                             # (N, 24)
        h = torch.matmul(h, self.w2.t()) + self.shift
        h = F.layer_norm(h, (10,), self.g)
        h = F.dropout(h, 0.5, self.training)
        return F.softmax(h, dim=-1), h.max(dim=1)[0] + h.permute(1, 0).mean(0)


def _tokens(shape, high, seed=0):
    return torch.randint(1, high, shape, generator=torch.Generator().manual_seed(seed))


def _arch(name):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if name == "resnet":
        return ResNet(), (torch.randn(2, 3, 16, 16, generator=g),)
    if name == "unet":
        return UNet(), (torch.randn(2, 2, 13, 11, generator=g),)
    if name == "unet_bilinear":
        return UNet(bilinear=True), (torch.randn(2, 2, 12, 10, generator=g),)
    if name == "transformer":
        return TransformerClassifier(), (_tokens((3, 7), 50),)
    if name == "bilstm":
        return BiLSTMTagger(), (_tokens((3, 6), 40),)
    if name == "functional":
        return Functional(), (torch.randn(3, 3, 8, 8, generator=g),)
    raise KeyError(name)


ARCHS = ("resnet", "unet", "unet_bilinear", "transformer", "bilstm", "functional")
#: archs whose train mode is deterministic (no dropout drawn), compared in train mode
TRAIN = {"resnet", "unet", "unet_bilinear", "transformer", "bilstm"}


def _numpy(inputs):
    return [t.numpy() for t in inputs]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ARCHS)
def test_architecture_parity(name, dtype):
    """Forward, gradients, buffers after the call and three SGD steps, through the
    toolkit; in train mode where the model has no dropout to draw."""
    model, inputs = _arch(name)
    train = name in TRAIN
    model.train(train)
    fm = from_torch(model, inputs)
    # the variables carry torch's names and values: to_torch_state_dict is the state_dict
    sd, want = to_torch_state_dict(fm), model.state_dict()
    assert sorted(sd) == sorted(want)
    for k in want:
        np.testing.assert_array_equal(np.asarray(sd[k]), want[k].numpy(), err_msg=k)
    report = assert_parity(model, fm, _numpy(inputs), dtype=dtype, train=train, steps=3,
                           optimizer="sgd", lr=0.01, name=name)
    assert report.passed
    assert len(report.step_errors) == 3


@pytest.mark.parametrize("name, optimizer", [("resnet", "adam"), ("transformer", "sgd")])
def test_eval_mode_parity(name, optimizer):
    """Eval mode (running statistics; the transformer with dropout 0.1, inactive), three
    optimizer steps. Adam only where no parameter's gradient is 0 in exact arithmetic:
    the attention's key bias shifts every score of a query equally, so softmax cancels
    it, and Adam would normalise the two frameworks' rounding noise into a full step."""
    model, inputs = _arch(name)
    if name == "transformer":
        torch.manual_seed(0)
        model = TransformerClassifier(dropout=0.1)
    model.eval()
    fm = from_torch(model, inputs)
    assert fm.deterministic
    assert_parity(model, fm, _numpy(inputs), steps=3, optimizer=optimizer, name=name)


def test_batchnorm_running_statistics_after_train_step():
    """The running statistics after one train-mode call equal torch's (and moved)."""
    model, (x,) = _arch("resnet")
    model.train()
    fm = from_torch(model, (x,))
    before = to_torch_state_dict(fm)["bn1.running_mean"]
    fm(jnp.asarray(x.numpy()))
    model(x)
    after = to_torch_state_dict(fm)
    assert not np.allclose(before, after["bn1.running_mean"])
    for k, v in model.state_dict().items():
        np.testing.assert_allclose(np.asarray(after[k]), v.numpy(), rtol=1e-6, atol=1e-7,
                                   err_msg=k)


# ------------------------------------------------------------------ torch_ref modules

#: every torch_ref class torch.fx traces → the registry case that builds and feeds it
TORCH_REF = {
    "LogisticRegression": "logistic_regression",
    "LinearRegression": "linear_regression",
    "SoftmaxClassifier": "softmax_classifier",
    "MLP": "mlp_small",
    "OneHotLinear": "one_hot_linear_small",
    "EmbeddingLookup": "embedding_small",
    "ValidConv1d": "conv1d_valid_small",
    "PaddedConv1d": "conv1d_padded_small",
    "CausalConv1d": "conv1d_causal_small",
    "ConvMLP": "conv_mlp_small",
    "TransposedConv1d": "conv_transpose1d",
    "RNNClassifier": "rnn_classifier_2layer",
    "AE": "ae_small",
    "VAE": "vae_small",
    "AlexNet": "alexnet_narrow_repeat_127x163_train",
    "InceptionModule": "inception_small",
    "ResLayer": "reslayer_small_train",
    "DownConv1dBlock": "segan_down_conv_block_odd_k5_s3_odd_len",
    "UpConv1dBlock": "segan_up_conv_block_odd_k5_s2",
    "Conv1dGenerator": "segan_generator_even_k6_p4_train",
    "DCGANGenerator": "dcgan_generator_small_train",
    "DCGANDiscriminator": "dcgan_discriminator_small_train",
    "UNet": "unet_bn_odd_train",
}


def _translated_case(case: Case) -> Case:
    """The registry case with its Flax side replaced by the translation of its torch
    side: same weights, inputs and mode, torch's layouts on both sides."""
    def flax_module(rngs):
        model = case.torch_module()
        model.train(case.train)
        example = [torch.from_numpy(a).float() if a.dtype.kind == "f" else torch.from_numpy(a)
                   for a in case.inputs(np.random.default_rng(0))]  # the model's float32
        return from_torch(model, example, rngs=rngs)

    return Case(f"translated {case.name}", case.torch_module, flax_module, case.inputs,
                train=case.train, grad_inputs=case.grad_inputs, seed=case.seed,
                well_posed=case.well_posed)


def _registry(name):
    return {c.name: c for c in all_cases()}[name]


def test_torch_ref_classes_all_listed():
    """Every torch_ref nn.Module class is translated here or expected to be refused."""
    import inspect
    import torch_ref
    classes = set()
    for modname in ("perceptrons", "embeddings", "convolutions", "recurrent",
                    "autoencoders", "alexnet", "inception", "resnet", "segan", "dcgan",
                    "unet", "qrnn"):
        mod = __import__(f"torch_ref.{modname}", fromlist=["x"])
        classes |= {c.__name__ for c in vars(mod).values() if inspect.isclass(c)
                    and issubclass(c, tnn.Module) and c.__module__ == mod.__name__}
    assert torch_ref is not None
    assert classes == set(TORCH_REF) | set(UNTRACEABLE) | {"UNetDoubleConv"}


#: the torch_ref classes also compared in float32 (one per kind of computation; the
#: architectures above run every test in both dtypes): kept short for CI's time budget
FLOAT32 = ("MLP", "CausalConv1d", "RNNClassifier", "VAE", "ResLayer", "DCGANGenerator")


@pytest.mark.parametrize("cls, dtype", [(c, "float64") for c in sorted(TORCH_REF)]
                         + [(c, "float32") for c in FLOAT32])
def test_torch_ref_module(cls, dtype):
    case = _translated_case(_registry(TORCH_REF[cls]))
    r = run_case(case, dtype, locate=False)
    assert r.error is None, r.error
    assert r.passed, r


#: torch_ref classes torch.fx cannot trace, and the source line the error must name
UNTRACEABLE = {"fQRNNLayer": "for t in range(seqlen)", "QRNNLayer": "for",
               "QRNN": "for"}


@pytest.mark.parametrize("cls", sorted(UNTRACEABLE))
def test_torch_ref_untraceable(cls):
    from torch_ref import qrnn
    model = getattr(qrnn, cls)(4, 6) if cls != "QRNN" else qrnn.QRNN(4, 6, num_layers=1)
    with pytest.raises(TranslationError) as e:
        from_torch(model, (torch.randn(2, 5, 4),))
    msg = str(e.value)
    assert "torch_ref/qrnn.py:" in msg and UNTRACEABLE[cls] in msg, msg
    assert "control flow" in msg


# ------------------------------------------------------------------ drop-in use

def test_jit_optax_training_and_export_back_to_torch():
    """nnx.jit forward equals eager; an optax loop trains it; the weights go back to
    torch, where the torch model then computes what the trained translation computes."""
    model, (x,) = _arch("resnet")
    model.train()
    fm = from_torch(model, (x,))
    jx = jnp.asarray(x.numpy())
    np.testing.assert_allclose(nnx.jit(lambda m, a: m(a))(fm, jx), fm(jx), rtol=1e-5,
                               atol=1e-6)
    opt = nnx.Optimizer(fm, optax.adam(1e-2), wrt=nnx.Param)
    y = jnp.arange(2) % 5

    @nnx.jit
    def step(m, opt, a):
        def loss(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(a), y).mean()
        value, grads = nnx.value_and_grad(loss)(m)
        opt.update(m, grads)
        return value

    losses = [float(step(fm, opt, jx)) for _ in range(5)]
    assert losses[-1] < losses[0]
    sd = to_torch_state_dict(fm)
    assert sorted(sd) == sorted(model.state_dict())
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()})
    model.eval()
    fm.eval()
    np.testing.assert_allclose(fm(jx), model(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_train_eval_select_the_program():
    """A forward reading self.training is traced in both modes: eval is deterministic,
    train draws dropout masks from the module's rngs."""
    model, (x,) = _arch("functional")
    model.eval()
    fm = from_torch(model, (x,), rngs=nnx.Rngs(dropout=3))
    assert fm._fa_programs[0] != fm._fa_programs[1]
    jx = jnp.asarray(x.numpy())
    a, b = fm(jx)[1], fm(jx)[1]
    np.testing.assert_array_equal(a, b)
    fm.train()
    c, d = fm(jx)[1], fm(jx)[1]
    assert not np.array_equal(c, d)  # two draws


def test_importing_flax_arch_does_not_import_torch_translate():
    import subprocess
    import sys
    code = ("import sys, flax_arch; flax_arch.from_torch; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ errors

class _Nonzero(tnn.Module):
    def forward(self, x):
        y = torch.relu(x)
        return torch.nonzero(y)


class _Branch(tnn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x


def test_unsupported_function_names_node_op_and_line():
    with pytest.raises(TranslationError) as e:
        from_torch(_Nonzero(), (torch.randn(3),))
    msg = str(e.value)
    assert e.value.node == "nonzero" and "nonzero" in e.value.op
    assert "test_translate.py:" in msg and "torch.nonzero(y)" in msg, msg


def test_data_dependent_branch_is_refused():
    with pytest.raises(TranslationError) as e:
        from_torch(_Branch(), (torch.randn(3),))
    msg = str(e.value)
    assert "control flow" in msg and "if x.sum() > 0" in msg, msg


def test_module_without_twin_is_traced_or_refused():
    """A torch.nn module without a twin is traced through: EmbeddingBag reaches
    F.embedding_bag, which has no translation; the error says so."""
    model = tnn.Sequential(tnn.EmbeddingBag(10, 3, mode="mean"))
    with pytest.raises(TranslationError) as e:
        from_torch(model, (torch.randint(0, 10, (2, 4)),))
    assert "embedding_bag" in str(e.value)


def test_bad_arguments():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        from_torch(lambda x: x, (torch.ones(1),))
    with pytest.raises(TypeError, match="no default"):
        from_torch(tnn.Bilinear(2, 2, 1), (torch.ones(1, 2),))
    fm = from_torch(tnn.Linear(2, 3), (torch.ones(1, 2),))
    with pytest.raises(TypeError, match="positional"):
        fm(jnp.ones((1, 2)), jnp.ones((1, 2)))
    assert isinstance(fm, flax_arch.TranslatedModule)


# ------------------------------------------------------------------ the CLI

_FACTORY = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).mean((2, 3)))


def make():
    torch.manual_seed(0)
    return Net()


def tagger():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Embedding(9, 4), nn.Flatten(), nn.Linear(12, 2))
    return net, (torch.randint(0, 9, (2, 3)),)


class Loop(nn.Module):
    def forward(self, x):
        for t in range(x.size(0)):
            x = x + 1
        return x
'''


@pytest.fixture
def factory_dir(tmp_path, monkeypatch):
    (tmp_path / "user_nets.py").write_text(_FACTORY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_cli_translate_reports_parity(factory_dir, capsys):
    from flax_arch.cli import main
    assert main(["translate", "user_nets:make", "--shape", "2x3x8x8", "--train"]) == 0
    out = capsys.readouterr().out
    assert "Net [float64, cpu]: PASS" in out and "Net [float32, cpu]: PASS" in out, out
    assert out.count("sgd step") == 6
    assert main(["translate", "user_nets:tagger", "--dtype", "float64", "--steps", "1"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["user_nets:Loop", "--shape", "3"], "user_nets.py:"),
    (["user_nets:make"], "--shape"),
    (["user_nets:nope", "--shape", "3"], "no attribute 'nope'"),
    (["user_nets", "--shape", "3"], "pkg.module:callable"),
    (["no_such_module:f", "--shape", "3"], "cannot import"),
])
def test_cli_translate_user_errors(factory_dir, capsys, argv, message):
    from flax_arch.cli import main
    assert main(["translate", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
