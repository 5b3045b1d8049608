"""``assert_parity`` on a model that is not in the registry: a small conv/BatchNorm/ReLU/
pool/linear classifier written here in both frameworks. Forward, gradients, state and
optimizer steps (SGD with momentum, Adam, AdamW) against torch; a planted bug is caught
with the report in the AssertionError; the user's modules are left unchanged."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch
from flax import nnx

import flax_arch.nn as fnn
from flax_arch.interop import to_torch_state_dict
from flax_arch.parity import assert_parity


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(8)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        h = self.pool(torch.relu(self.bn(self.conv(x))))
        return self.fc(h.flatten(1))


class FlaxNet(nnx.Module):
    def __init__(self, *, rngs, relu=True):
        self.conv = fnn.Conv2d(3, 8, 3, padding=1, bias=False, rngs=rngs)
        self.bn = fnn.BatchNorm2d(8)
        self.pool = fnn.MaxPool2d(2)
        self.fc = fnn.Linear(8 * 4 * 4, 5, rngs=rngs)
        self.relu = relu

    def __call__(self, x):  # (N, 8, 8, 3) channels-last → (N, 5)
        h = self.bn(self.conv(x))
        h = self.pool(jax.nn.relu(h) if self.relu else h)
        # flatten in torch's (C, H, W) order so the Linear's weight matches
        return self.fc(h.transpose(0, 3, 1, 2).reshape(h.shape[0], -1))


def _x():
    return np.random.default_rng(0).standard_normal((4, 3, 8, 8))


@pytest.mark.parametrize("optimizer,kw", [("sgd", {"momentum": 0.9}), ("adam", {}),
                                          ("adamw", {"weight_decay": 0.05})])
def test_user_model_matches_over_optimizer_steps(optimizer, kw):
    torch.manual_seed(0)
    t, f = TorchNet().double(), FlaxNet(rngs=nnx.Rngs(0))
    before_t = {k: v.clone() for k, v in t.state_dict().items()}
    before_f = to_torch_state_dict(f)
    report = assert_parity(t, f, [_x()], in_layouts=["channels"], train=True, steps=3,
                           optimizer=optimizer, lr=1e-2, **kw)
    assert report.passed and len(report.step_errors) == 3
    assert max(report.step_errors) <= 1e-12 and report.result.grad_err <= 1e-12
    assert "adam" in str(report) or optimizer == "sgd"
    # the user's modules are untouched
    for k, v in t.state_dict().items():
        assert torch.equal(v, before_t[k]), k
    for k, v in to_torch_state_dict(f).items():
        np.testing.assert_array_equal(v, before_f[k])


def test_a_planted_bug_raises_with_the_report():
    torch.manual_seed(0)
    t, f = TorchNet().double(), FlaxNet(rngs=nnx.Rngs(0), relu=False)  # the ReLU forgotten
    with pytest.raises(AssertionError) as err:
        assert_parity(t, f, [_x()], in_layouts=["channels"])
    text = str(err.value)
    assert "FAIL" in text and "forward" in text and "first diverging submodule" in text


def test_compare_steps_on_a_case_and_its_argument_check():
    """compare_steps on a Case directly (AdamW with torch's decay), and a clear error for
    an argument the optimizer does not take."""
    from flax_arch.parity import Case, compare_steps
    torch.manual_seed(0)
    t = TorchNet().double()
    case = Case("net", lambda: t, lambda r: FlaxNet(rngs=r), lambda rng: (_x(),),
                in_layouts=["channels"], train=True)
    errs, _ = compare_steps(case, "float64", 2, "adamw", 1e-2, weight_decay=1e-2)
    assert max(errs) <= 1e-12
    with pytest.raises(ValueError, match="unsupported optimizer arguments"):
        compare_steps(case, "float64", 1, "sgd", 1e-2, betas=(0.9, 0.99))


class FrozenFcNet(FlaxNet):
    """A port whose linear layer never learns (its kernel behind a stop_gradient)."""

    def __call__(self, x):
        h = self.pool(jax.nn.relu(self.bn(self.conv(x))))
        h = h.transpose(0, 3, 1, 2).reshape(h.shape[0], -1)
        return h @ jax.lax.stop_gradient(self.fc.kernel[...]) + self.fc.bias[...]


def test_steps_fail_when_a_parameter_does_not_train():
    from flax_arch.parity import Case, compare_steps
    torch.manual_seed(0)
    t = TorchNet().double()
    case = Case("frozen", lambda: t, lambda r: FrozenFcNet(rngs=r), lambda rng: (_x(),),
                in_layouts=["channels"], train=True)
    errs, worst = compare_steps(case, "float64", 2, "sgd", 1e-2)
    assert min(errs) > 1e-6 and worst[0] == "fc.weight", (errs, worst)


USER_CASES = '''
import numpy as np, torch
from flax import nnx
import flax_arch.nn as fnn
from flax_arch.parity import Case

CASES = [Case("my_linear", lambda: torch.nn.Linear(4, 3), lambda r: fnn.Linear(4, 3, rngs=r),
              lambda rng: (rng.standard_normal((5, 4)),))]
'''


def test_cli_runs_a_users_own_registry(tmp_path, capsys):
    from flax_arch.cli import main
    path = tmp_path / "my_cases.py"
    path.write_text(USER_CASES)
    out = tmp_path / "r.json"
    assert main(["parity", "--cases", str(path), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "my_linear" in text and "4 passed, 0 failed" in text  # 4 dtypes by default
    import json
    assert [r["case"] for r in json.loads(out.read_text())["results"]] == ["my_linear"] * 4
    assert main(["parity", "--cases", str(tmp_path / "missing.py")]) == 2
    assert main(["parity", "--cases", "no_such_module_xyz"]) == 2
    assert main(["parity", "--only", "("]) == 2
    assert "not a regular expression" in capsys.readouterr().err
