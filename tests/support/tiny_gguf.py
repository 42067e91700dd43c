"""Write a tiny, randomly initialised ``llama``-architecture GGUF model for tests.

The model is a few hundred KB: two transformer blocks, 64-wide embeddings and a
~400-token SentencePiece-style ("llama"/SPM) vocabulary.  Its output is gibberish,
but llama.cpp loads it like any real model, so tests exercise the real server and
the real OpenAI wire protocol.

Tokenizer notes:

* SPM with all 256 ``<0xXX>`` byte tokens, so *any* UTF-8 input tokenizes via
  byte fallback (pieces not in the vocab decompose into bytes instead of failing).
* Control tokens ``<s>``/``</s>`` (BOS/EOS) and the chatml markers
  ``<|im_start|>``/``<|im_end|>``; ``<|im_end|>`` is also declared the EOT token.
* ``tokenizer.chat_template`` is byte-for-byte llama-cpp-python's built-in chatml
  template, so the server recognises it as ``chat_format="chatml"``.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

__all__ = ["CHATML_TEMPLATE", "TinyModelSpec", "write_tiny_gguf"]

# Identical to llama_cpp.llama_chat_format.CHATML_CHAT_TEMPLATE (so it is auto-detected).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_SPACE = "\u2581"  # SentencePiece word-boundary marker "▁"

# A handful of merges so ordinary English text does not tokenize purely per-character.
# fmt: off
_PIECES = (
    "th", "he", "in", "er", "an", "re", "on", "at", "en", "nd", "ti", "es", "or", "te",
    "the", "and", "ing", "ion",
    f"{_SPACE}t", f"{_SPACE}a", f"{_SPACE}s", f"{_SPACE}i", f"{_SPACE}o", f"{_SPACE}w",
    f"{_SPACE}th", f"{_SPACE}the", f"{_SPACE}an", f"{_SPACE}and", f"{_SPACE}in", f"{_SPACE}of",
)
# fmt: on


class TinyModelSpec:
    """Hyper-parameters of the generated model (kept small so the file is tiny)."""

    n_layer = 2
    n_embd = 64
    n_head = 4
    n_head_kv = 4
    n_ff = 128
    rms_eps = 1e-5
    rope_freq_base = 10000.0


def _build_vocab() -> tuple[list[str], list[float], list[int]]:
    tokens: list[str] = []
    scores: list[float] = []
    types: list[int] = []

    def add(text: str, score: float, ttype: gguf.TokenType) -> None:
        tokens.append(text)
        scores.append(score)
        types.append(int(ttype))

    add("<unk>", 0.0, gguf.TokenType.UNKNOWN)  # 0
    add("<s>", 0.0, gguf.TokenType.CONTROL)  # 1 (BOS)
    add("</s>", 0.0, gguf.TokenType.CONTROL)  # 2 (EOS)
    add("<|im_start|>", 0.0, gguf.TokenType.CONTROL)  # 3
    add("<|im_end|>", 0.0, gguf.TokenType.CONTROL)  # 4 (EOT)
    for b in range(256):  # 5..260: byte fallback
        add(f"<0x{b:02X}>", 0.0, gguf.TokenType.BYTE)
    # Single characters: word marker + printable ASCII.  Lower score than merges.
    singles = [_SPACE] + [chr(c) for c in range(0x21, 0x7F)]
    for i, ch in enumerate(singles):
        add(ch, -1000.0 - i, gguf.TokenType.NORMAL)
    # Merged pieces: longer pieces get higher scores so SPM bigram merging prefers them.
    for i, piece in enumerate(_PIECES):
        add(piece, -100.0 + len(piece) * 10.0 - i * 0.01, gguf.TokenType.NORMAL)
    assert len(set(tokens)) == len(tokens), "duplicate token in tiny vocab"
    return tokens, scores, types


def write_tiny_gguf(path: Path, *, n_ctx: int = 2048, seed: int = 0) -> Path:
    """Write a tiny random-weight llama GGUF to ``path`` and return ``path``.

    ``n_ctx`` becomes ``llama.context_length`` (the training context the server
    compares ``--n_ctx`` against); ``seed`` makes the weights reproducible.
    """
    spec = TinyModelSpec
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tokens, scores, types = _build_vocab()
    n_vocab = len(tokens)
    head_dim = spec.n_embd // spec.n_head
    n_embd_kv = head_dim * spec.n_head_kv

    def mat(rows: int, cols: int) -> np.ndarray:
        # numpy shape is (rows, cols) == ggml ne [cols, rows]; f16 halves the file size.
        return (rng.standard_normal((rows, cols)) * 0.02).astype(np.float16)

    def norm() -> np.ndarray:
        return np.ones(spec.n_embd, dtype=np.float32)

    arch = "llama"
    writer = gguf.GGUFWriter(path, arch)
    try:
        writer.add_name("llm-localfirst tiny test model")
        writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
        writer.add_context_length(n_ctx)
        writer.add_embedding_length(spec.n_embd)
        writer.add_block_count(spec.n_layer)
        writer.add_feed_forward_length(spec.n_ff)
        writer.add_head_count(spec.n_head)
        writer.add_head_count_kv(spec.n_head_kv)
        writer.add_rope_dimension_count(head_dim)
        writer.add_rope_freq_base(spec.rope_freq_base)
        writer.add_layer_norm_rms_eps(spec.rms_eps)
        writer.add_vocab_size(n_vocab)

        writer.add_tokenizer_model("llama")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_unk_token_id(0)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_eot_token_id(tokens.index("<|im_end|>"))
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        writer.add_chat_template(CHATML_TEMPLATE)

        writer.add_tensor("token_embd.weight", mat(n_vocab, spec.n_embd))
        for i in range(spec.n_layer):
            writer.add_tensor(f"blk.{i}.attn_norm.weight", norm())
            writer.add_tensor(f"blk.{i}.attn_q.weight", mat(spec.n_embd, spec.n_embd))
            writer.add_tensor(f"blk.{i}.attn_k.weight", mat(n_embd_kv, spec.n_embd))
            writer.add_tensor(f"blk.{i}.attn_v.weight", mat(n_embd_kv, spec.n_embd))
            writer.add_tensor(f"blk.{i}.attn_output.weight", mat(spec.n_embd, spec.n_embd))
            writer.add_tensor(f"blk.{i}.ffn_norm.weight", norm())
            writer.add_tensor(f"blk.{i}.ffn_gate.weight", mat(spec.n_ff, spec.n_embd))
            writer.add_tensor(f"blk.{i}.ffn_up.weight", mat(spec.n_ff, spec.n_embd))
            writer.add_tensor(f"blk.{i}.ffn_down.weight", mat(spec.n_embd, spec.n_ff))
        writer.add_tensor("output_norm.weight", norm())
        writer.add_tensor("output.weight", mat(n_vocab, spec.n_embd))

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return path
