"""Slides "Fully Connected: A perceptron", "Multiclass classifier", "MultiLayer Perceptron".

The slides build ``nn.Sequential`` objects (``lor``, ``lir``, ``smx``, ``mlp``); they are
given class names here (subclasses of ``nn.Sequential``), so their state_dict keys are the
slides' own: ``0.weight``, ``0.bias``, … (the MLP's: ``0.*``, ``2.*``, ``4.*``).
"""

import torch.nn as nn


class LogisticRegression(nn.Sequential):
    """``lor``: one unit with a sigmoid — a binary linear classifier. (N, num_inputs) → (N, 1)."""

    def __init__(self, num_inputs):
        super().__init__(nn.Linear(num_inputs, 1), nn.Sigmoid())


class LinearRegression(nn.Sequential):
    """``lir``: one unit, no activation. (N, num_inputs) → (N, 1)."""

    def __init__(self, num_inputs):
        super().__init__(nn.Linear(num_inputs, 1))


class SoftmaxClassifier(nn.Sequential):
    """``smx``: many units with a log-softmax. (N, num_inputs) → (N, num_outputs) log-probs."""

    def __init__(self, num_inputs, num_outputs):
        super().__init__(nn.Linear(num_inputs, num_outputs), nn.LogSoftmax(dim=1))


class MLP(nn.Sequential):
    """``mlp``: Linear-Tanh-Linear-Tanh-Linear-LogSoftmax. (N, 100) → (N, 20) by default."""

    def __init__(self, num_inputs=100, hidden_size=1024, num_outputs=20):
        super().__init__(
            nn.Linear(num_inputs, hidden_size),
            nn.Tanh(),
            nn.Linear(hidden_size, hidden_size),
            nn.Tanh(),
            nn.Linear(hidden_size, num_outputs),
            nn.LogSoftmax(dim=1),
        )
