"""Slide "Quasi Recurrent Neural Network (QRNN)" (both decks: ``class fQRNNLayer``) and the
paper's variants: Bradbury, Merity, Xiong, Socher, "Quasi-Recurrent Neural Networks",
ICLR 2017 (arXiv:1611.01576, 2016).

Layout is the slide's: ``x`` (batch, time, features), batch first; the convolution runs on
the transposed (batch, features, time) tensor, as on the slide.

* :class:`fQRNNLayer` — the slide's f-pooling layer, line for line, with three fixes (see
  its docstring).
* :class:`QRNNLayer` — the same layer extended with the paper's fo-/ifo-pooling and
  zoneout (plain loop over time: this file is the oracle, not a fast implementation).
* :class:`QRNN` — a stack of :class:`QRNNLayer`, optionally bidirectional.

The Flax port is :mod:`flax_arch.models.qrnn`; the attribute names here (``conv``,
``layers``) give it the same state_dict keys.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["fQRNNLayer", "QRNNLayer", "QRNN", "GATES"]

#: gates per pooling variant, in the order of the convolution's output-channel blocks
GATES = {"f": ("z", "f"), "fo": ("z", "f", "o"), "ifo": ("z", "f", "o", "i")}


class fQRNNLayer(nn.Module):
    """The slide's ``fQRNNLayer``: causal convolution, then f-pooling
    ``h_t = f_t ⊙ h_{t−1} + (1 − f_t) ⊙ z_t`` with ``z = tanh``, ``f = σ`` of the two halves
    of the convolution's output channels (z first).

    ``forward(x, state=None)``: x (batch, time, num_inputs), state (batch, num_outputs) or
    None (zeros) → ``(hts, h_last)``: hts (batch, time, num_outputs), h_last
    (batch, num_outputs).

    Fixes to the slides (the code is otherwise verbatim):

    1. The second deck builds ``self.conv = nn.Conv2d(num_inputs, num_outputs * 2, kwidth)``;
       torch takes the 3-D (batch, features, time) input as one unbatched (C, H, W) image:
       a channel-count error, or, when batch == num_inputs, silently a 2-D convolution
       over (features, time). The first deck's ``nn.Conv1d`` is meant and used (key
       ``conv.weight``, shape (2·num_outputs, num_inputs, kwidth)).
    2. In the first deck the ``chunk`` / loop / ``cat`` / ``return`` lines are indented
       inside the ``else:`` branch, so a call with ``state=None`` falls off the end and
       returns ``None``. They are dedented to run for both branches, as in the second deck.
    3. The zero state was ``torch.zeros(ft.size(0), self.num_outputs, 1)``: float32 on the
       CPU whatever the input, so a CUDA input fails with a device mismatch and a
       float16/bfloat16 input gives float32 outputs (type promotion). It is created like
       ``ft`` instead: ``ft.new_zeros(...)`` (same dtype and device).
    """

    def __init__(self, num_inputs, num_outputs, kwidth=2):
        super().__init__()
        self.num_inputs = num_inputs
        self.num_outputs = num_outputs
        self.kwidth = kwidth
        # double feature maps for zt and ft predictions with same conv layer
        self.conv = nn.Conv1d(num_inputs, num_outputs * 2, kwidth)  # fix 1: Conv1d

    def forward(self, x, state=None):
        # x is [bsz, seq len, num inputs]
        # state is [bsz, num outputs] dimensional
        # ----- FEED FORWARD PART
        # inference convolutional part
        # transpose x axis first to work with CNN layer
        x = x.transpose(1, 2)
        pad = self.kwidth - 1
        xp = F.pad(x, (pad, 0))
        conv_h = self.conv(xp)
        # split convolutional layer feature maps into zt (new state
        # candidate) and forget activation ft
        zt, ft = torch.chunk(conv_h, 2, dim=1)
        # Convert forget gate into actual forget
        ft = torch.sigmoid(ft)
        # Convert zt into actual non-linear response
        zt = torch.tanh(zt)
        # ----- SEQUENTIAL PART
        # iterate through time now to make pooling
        seqlen = ft.size(2)
        if state is None:
            # create the zero state (fix 3: dtype and device of ft)
            ht_1 = ft.new_zeros(ft.size(0), self.num_outputs, 1)
        else:
            # add the dim=2 to match 3D tensor shape
            ht_1 = state.unsqueeze(2)
        # fix 2: the rest runs for both branches
        zts = torch.chunk(zt, zt.size(2), dim=2)
        fts = torch.chunk(ft, ft.size(2), dim=2)
        hts = []
        for t in range(seqlen):
            ht = ht_1 * fts[t] + (1 - fts[t]) * zts[t]
            # transpose time, channels dims again to match RNN-like shape
            hts.append(ht.transpose(1, 2))
            # re-assign h[t-1] now
            ht_1 = ht
        # convert hts list into a 3D tensor [bsz, seq_len, num_outputs]
        hts = torch.cat(hts, dim=1)
        return hts, ht_1.squeeze(2)


class QRNNLayer(nn.Module):
    """The slide's layer with the paper's pooling variants and zoneout.

    The convolution (attribute ``conv``, causal as on the slide) has ``k · num_outputs``
    output channels, split in this order (each variant extends the previous one):

    * ``gates='f'``   (k=2): z, f — the slide: ``c_t = f_t ⊙ c_{t−1} + (1 − f_t) ⊙ z_t``,
      ``h_t = c_t``;
    * ``gates='fo'``  (k=3): z, f, o — ``c_t`` as for 'f', ``h_t = o_t ⊙ c_t``;
    * ``gates='ifo'`` (k=4): z, f, o, i — ``c_t = f_t ⊙ c_{t−1} + i_t ⊙ z_t``,
      ``h_t = o_t ⊙ c_t``;

    with ``z = tanh`` and ``f, o, i = σ`` of their channel blocks.

    Zoneout (paper §2.1) acts on the forget gate: ``f ← 1 − dropout(1 − f)`` with the
    dropout *not* rescaled by 1/(1−p). In training mode a keep-mask ``m ~ Bernoulli(1 − p)``
    (one draw per batch element, step and unit) gives ``f ← 1 − m ⊙ (1 − f)``: where
    ``m = 0`` the gate is 1 and the unit keeps its previous state, ``c_t = c_{t−1}``
    (for ifo the ``i ⊙ z`` term is still added). This is the Salesforce implementation's
    ``F = F * mask`` on its ``F = 1 − f``. In evaluation mode (``self.training`` False)
    ``zoneout_eval`` decides: ``'expectation'`` (default, as Salesforce's ``F *= 1 −
    zoneout``) uses the mask's mean, ``f ← 1 − (1 − p)(1 − f)``; ``'identity'`` leaves f
    unchanged.

    ``forward(x, state=None, zoneout_mask=None)``: x (batch, time, num_inputs); state
    (batch, num_outputs) or None (zeros) → ``(hts, c_last)``: hts (batch, time,
    num_outputs), c_last (batch, num_outputs), the last pooling state ``c_T`` (= ``h_T``
    for 'f'), which is what a continuation passes back as ``state``. ``zoneout_mask``
    (batch, time, num_outputs), any dtype, nonzero = keep: in training mode it replaces the
    random draw (so another framework can be fed the same mask); it is a constant (no
    gradient) and is rejected in evaluation mode.
    """

    def __init__(self, num_inputs, num_outputs, kwidth=2, gates="f", zoneout=0.0,
                 zoneout_eval="expectation"):
        if gates not in GATES:
            raise ValueError(f"QRNNLayer: gates must be one of {sorted(GATES)}, got {gates!r}")
        if not 0.0 <= zoneout < 1.0:
            raise ValueError(f"QRNNLayer: zoneout must be in [0, 1), got {zoneout!r}")
        if zoneout_eval not in ("expectation", "identity"):
            raise ValueError("QRNNLayer: zoneout_eval must be 'expectation' or 'identity', "
                             f"got {zoneout_eval!r}")
        super().__init__()
        self.num_inputs = num_inputs
        self.num_outputs = num_outputs
        self.kwidth = kwidth
        self.gates = gates
        self.zoneout = zoneout
        self.zoneout_eval = zoneout_eval
        self.conv = nn.Conv1d(num_inputs, num_outputs * len(GATES[gates]), kwidth)

    def forward(self, x, state=None, zoneout_mask=None):
        xp = F.pad(x.transpose(1, 2), (self.kwidth - 1, 0))  # (B, C_in, P + T), causal
        g = dict(zip(GATES[self.gates], torch.chunk(self.conv(xp), len(GATES[self.gates]),
                                                    dim=1)))  # each (B, H, T)
        zt = torch.tanh(g["z"])
        ft = torch.sigmoid(g["f"])
        if self.training:
            if zoneout_mask is not None:
                # (B, T, H) → (B, H, T), as the gates
                keep = (zoneout_mask.detach() != 0).transpose(1, 2).to(ft.dtype)
                ft = 1 - keep * (1 - ft)
            elif self.zoneout > 0:
                keep = torch.bernoulli(torch.full_like(ft, 1 - self.zoneout))
                ft = 1 - keep * (1 - ft)
        else:
            if zoneout_mask is not None:
                raise ValueError("QRNNLayer: zoneout_mask is only used in training mode")
            if self.zoneout > 0 and self.zoneout_eval == "expectation":
                ft = 1 - (1 - self.zoneout) * (1 - ft)
        # what is added to the decayed state: (1 − f) ⊙ z, or i ⊙ z for ifo
        inp = (torch.sigmoid(g["i"]) if "i" in g else 1 - ft) * zt
        ct = ft.new_zeros(ft.size(0), self.num_outputs) if state is None else state
        cs = []
        for t in range(ft.size(2)):
            ct = ft[:, :, t] * ct + inp[:, :, t]
            cs.append(ct)
        hts = torch.stack(cs, dim=1)  # (B, T, H)
        if "o" in g:
            hts = torch.sigmoid(g["o"]).transpose(1, 2) * hts
        return hts, ct


class QRNN(nn.Module):
    """A stack of :class:`QRNNLayer` (paper §2: layers are stacked; bidirectional as in the
    paper's encoder), batch first.

    ``layers`` is an ``nn.ModuleList`` of ``num_layers · D`` layers (D = 2 if
    ``bidirectional`` else 1); layer ``l`` direction ``d`` is ``layers[l·D + d]`` (the
    indexing of ``nn.LSTM``'s ``h_n``). Layer ``l > 0`` reads the D·hidden_size
    concatenated outputs of layer ``l − 1``. The backward direction runs its layer on the
    time-reversed sequence (so its convolution looks at the current and *later* inputs)
    and reverses the result back.

    ``forward(x, state=None, zoneout_mask=None)``: x (batch, time, input_size); state
    (num_layers·D, batch, hidden_size) or None → ``(out, c_n)``: out (batch, time,
    D·hidden_size) (forward direction first), c_n (num_layers·D, batch, hidden_size) the
    last pooling state of each layer/direction (for the backward direction: after reading
    step 0). ``zoneout_mask`` (num_layers·D, batch, time, hidden_size), indexed by the
    original time step, for training mode (see :class:`QRNNLayer`).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, kwidth=2, gates="f",
                 zoneout=0.0, zoneout_eval="expectation", bidirectional=False):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"QRNN: num_layers must be >= 1, got {num_layers}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bidirectional = num_layers, bidirectional
        d = 2 if bidirectional else 1
        self.layers = nn.ModuleList([
            QRNNLayer(input_size if i // d == 0 else d * hidden_size, hidden_size, kwidth,
                      gates, zoneout, zoneout_eval)
            for i in range(num_layers * d)])

    def forward(self, x, state=None, zoneout_mask=None):
        d = 2 if self.bidirectional else 1
        last = []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(d):
                i = layer * d + direction
                s = None if state is None else state[i]
                m = None if zoneout_mask is None else zoneout_mask[i]
                mod = self.layers[i]
                if direction == 0:
                    h, c = mod(x, s, m)
                else:
                    h, c = mod(x.flip(1), s, None if m is None else m.flip(1))
                    h = h.flip(1)
                outs.append(h)
                last.append(c)
            x = torch.cat(outs, dim=2) if d == 2 else outs[0]
        return x, torch.stack(last, dim=0)
