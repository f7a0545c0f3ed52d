"""The exact SD-1.x CLIP tokenizer, rebuilt offline from the BPE vocabulary that open_clip ships."""
from __future__ import annotations

from functools import lru_cache

from transformers import CLIPTokenizer

SD_MAX_LENGTH = 77
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


@lru_cache(maxsize=1)
def _open_clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    from open_clip.tokenizer import SimpleTokenizer

    bpe = SimpleTokenizer()
    merges = [tuple(pair) for pair, _ in sorted(bpe.bpe_ranks.items(), key=lambda item: item[1])]
    # open_clip names the two special tokens differently; SD's tokenizer uses OpenAI's names, same ids.
    renamed = {"<start_of_text>": BOS, "<end_of_text>": EOS}
    vocab = {renamed.get(token, token): index for token, index in bpe.encoder.items()}
    return vocab, merges


@lru_cache(maxsize=1)
def sd_clip_tokenizer() -> CLIPTokenizer:
    """SD-1.5's tokenizer (openai/clip-vit-large-patch14): 49,408 tokens, pad = EOS, 77 positions."""
    vocab, merges = _open_clip_vocab()
    return CLIPTokenizer(
        vocab=dict(vocab),
        merges=list(merges),
        bos_token=BOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=EOS,
        model_max_length=SD_MAX_LENGTH,
    )
