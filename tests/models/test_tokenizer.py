"""The SD-1.x CLIP tokenizer rebuilt offline from open_clip's BPE vocabulary."""
from __future__ import annotations

from sms.models.tokenizer import SD_MAX_LENGTH, sd_clip_tokenizer

BOS_ID, EOS_ID = 49406, 49407


def test_known_prompt_ids():
    tokenizer = sd_clip_tokenizer()
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_vocabulary_size_and_special_tokens():
    tokenizer = sd_clip_tokenizer()
    assert len(tokenizer) == 49408
    assert tokenizer.bos_token_id == BOS_ID
    assert tokenizer.eos_token_id == EOS_ID
    assert tokenizer.pad_token_id == EOS_ID
    assert tokenizer.model_max_length == SD_MAX_LENGTH == 77


def test_padding_to_77_with_eos():
    tokenizer = sd_clip_tokenizer()
    ids = tokenizer(["a photo of a cat"], padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    assert tuple(ids.shape) == (1, 77)
    assert ids[0, :7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert ids[0, 7:].tolist() == [EOS_ID] * 70


def test_truncation_keeps_bos_and_eos():
    tokenizer = sd_clip_tokenizer()
    ids = tokenizer(["cat " * 200], padding="max_length", max_length=77, truncation=True,
                    return_tensors="pt").input_ids[0].tolist()
    assert len(ids) == 77
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID
    assert ids[1:-1] == [2368] * 75


def test_cached_instance():
    assert sd_clip_tokenizer() is sd_clip_tokenizer()
