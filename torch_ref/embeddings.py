"""Slides "Fully Connected: When input is discrete..." and "Fully Connected: Embedding Layer".

``emb_1`` maps one-hot codes through a dense ``nn.Linear``; ``emb_2`` is the same mapping
as an ``nn.Embedding`` lookup. Both keep the slides' defaults (vocabulary 10000 → 100).
"""

import torch.nn as nn


class OneHotLinear(nn.Linear):
    """``emb_1 = nn.Linear(VOCAB_SIZE, HIDDEN_SIZE)``: (N, vocab_size) one-hot → (N, hidden_size)."""

    def __init__(self, vocab_size=10000, hidden_size=100):
        super().__init__(vocab_size, hidden_size)


class EmbeddingLookup(nn.Embedding):
    """``emb_2 = nn.Embedding(VOCAB_SIZE, HIDDEN_SIZE)``: long indices (*) → (*, hidden_size)."""

    def __init__(self, vocab_size=10000, hidden_size=100, **kwargs):
        super().__init__(vocab_size, hidden_size, **kwargs)
