"""Real GGUF files for tests, written with the `gguf` package (tiny tensors, real metadata)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter, LlamaFileType


def write_gguf(
    path: Path,
    *,
    arch: str = "llama",
    name: str = "tiny",
    elements: int = 4096,
    context_length: int = 2048,
    chat_template: str | None = "{{ .Prompt }}",
) -> Path:
    """A valid GGUF file of about `elements` * 4 bytes of tensor data."""
    writer = GGUFWriter(str(path), arch=arch)
    writer.add_name(name)
    writer.add_block_count(2)
    writer.add_context_length(context_length)
    writer.add_embedding_length(64)
    writer.add_file_type(int(LlamaFileType.ALL_F32))
    writer.add_tokenizer_model("llama")
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    rows = max(1, elements // 64)
    writer.add_tensor("token_embd.weight", np.arange(rows * 64, dtype=np.float32).reshape(rows, 64))
    writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
