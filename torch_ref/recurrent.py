"""Slides "Recurrent Layer" and "Connecting an RNN with a FC layer" (and "LSTM Layer").

The slides use ``nn.RNN`` / ``nn.LSTM`` directly — those torch layers are themselves the
reference for :mod:`flax_arch.nn.recurrent`. The one composite module is the RNN whose
per-step hidden states feed a fully connected log-softmax classifier; the slide builds it
as two loose objects (``rnn``, ``fc``) and calls ``ht, state = rnn(x, None); y = fc(ht)``.
Here they are the attributes of :class:`RNNClassifier`, so its state_dict keys are
``rnn.weight_ih_l0`` … and ``fc.0.weight`` / ``fc.0.bias``.

Layout is the slide's: ``batch_first=True``, x (N, L, num_inputs) — the slide warns that
with ``batch_first=False`` this direct connection would not work.
"""

import torch.nn as nn


class RNNClassifier(nn.Module):
    """``rnn`` (``nn.RNN(..., batch_first=True)``) then ``fc`` (Linear + LogSoftmax(dim=2)).

    ``forward(x, h0=None)``: x (N, L, num_inputs) → y (N, L, num_outputs) log-probabilities
    per time step (the slide: (1, 100, 100) → (1, 100, 10)).
    """

    def __init__(self, num_inputs=100, hidden_size=512, num_outputs=10, num_layers=1):
        super().__init__()
        self.rnn = nn.RNN(num_inputs, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Sequential(
            nn.Linear(hidden_size, num_outputs),
            nn.LogSoftmax(dim=2),
        )

    def forward(self, x, h0=None):
        ht, state = self.rnn(x, h0)
        y = self.fc(ht)
        return y
