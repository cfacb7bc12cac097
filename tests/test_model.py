"""The model against transformers' LlamaForCausalLM, checkpoints both ways, and bad checkpoints."""
import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from w2s.model import KVCache, Llama, ModelArgs

transformers = pytest.importorskip("transformers", reason="compares with transformers (requirements-dev.txt)")

LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 16}
CASES = {
    # GQA with llama3 scaling; sequences of 48 go well beyond the original context of 16.
    "gqa_llama3_rope": dict(num_attention_heads=4, num_key_value_heads=2, rope_scaling=LLAMA3_SCALING),
    "tied_embeddings": dict(num_attention_heads=4, num_key_value_heads=1, tie_word_embeddings=True),
    "plain_mha": dict(num_attention_heads=4, num_key_value_heads=4),
}


def hf_config(**overrides):
    base = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=160, vocab_size=101,
                max_position_embeddings=128, rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False)
    return transformers.LlamaConfig(**{**base, **overrides})


def random_hf_model(seed=0, **overrides):
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(hf_config(**overrides)).eval()
    with torch.no_grad():  # HF zero-inits nothing here, but make norms non-trivial so they are tested too
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


def max_rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def tokens(batch=2, length=48, vocab=101, seed=1):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def rewrite_rope_spelling(config_path, spelling):
    """Rewrite config.json's rotary settings in one of the two spellings seen in the wild."""
    with open(config_path) as f:
        config = json.load(f)
    rope = dict(config.pop("rope_parameters", None) or {})
    theta = rope.pop("rope_theta", config.pop("rope_theta", 10000.0))
    scaling = rope or config.pop("rope_scaling", None)
    config.pop("rope_scaling", None)
    if spelling == "classic":  # released Llama-3.1 files
        config["rope_theta"] = theta
        config["rope_scaling"] = scaling
    else:  # recent transformers
        config["rope_parameters"] = {"rope_theta": theta, **(scaling or {"rope_type": "default"})}
    with open(config_path, "w") as f:
        json.dump(config, f)


@pytest.mark.parametrize("spelling", ["classic", "rope_parameters"])
@pytest.mark.parametrize("case", list(CASES))
def test_hf_checkpoint_loads_with_same_logits(tmp_path, case, spelling):
    hf = random_hf_model(**CASES[case])
    hf.save_pretrained(tmp_path)
    rewrite_rope_spelling(tmp_path / "config.json", spelling)
    ours = Llama.from_pretrained(str(tmp_path), dtype=torch.float32).eval()
    x = tokens()
    with torch.no_grad():
        assert max_rel_err(ours(x), hf(x).logits) < 1e-5


@pytest.mark.parametrize("case", list(CASES))
def test_saved_checkpoint_loads_in_transformers_with_same_logits(tmp_path, case):
    hf_like = hf_config(**CASES[case]).to_dict()
    args = ModelArgs.from_hf_config({**hf_like, "architectures": ["LlamaForCausalLM"]})
    torch.manual_seed(0)
    ours = Llama(args).eval()
    ours.save_pretrained(str(tmp_path))
    hf = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path), dtype=torch.float32).eval()
    x = tokens()
    with torch.no_grad():
        assert max_rel_err(hf(x).logits, ours(x)) < 1e-5
    if args.tie_embeddings:
        assert "lm_head.weight" not in load_file(tmp_path / "model.safetensors")


def test_from_hf_config_reads_both_spellings_of_llama31():
    classic = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "num_hidden_layers": 32,
               "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
               "vocab_size": 128256, "rope_theta": 500000.0, "max_position_embeddings": 131072,
               "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 8192, "rope_type": "llama3"}}
    recent = {k: v for k, v in classic.items() if k not in ("rope_theta", "rope_scaling")}
    recent["rope_parameters"] = {"rope_theta": 500000.0, **classic["rope_scaling"]}
    a, b = ModelArgs.from_hf_config(classic), ModelArgs.from_hf_config(recent)
    assert a == b == ModelArgs.preset("llama3.1-8b", bos_token_id=None, eos_token_id=None)
    assert a.rope_theta == 500000.0 and a.rope_scaling["factor"] == 8.0


def test_sharded_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = Llama(ModelArgs.preset("tiny", vocab_size=300))
    model.save_pretrained(str(tmp_path), max_shard_bytes=200_000)
    shards = sorted(p for p in os.listdir(tmp_path) if p.endswith(".safetensors"))
    assert len(shards) > 1 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    index = json.load(open(tmp_path / "model.safetensors.index.json"))
    assert set(index["weight_map"].values()) == set(shards)
    loaded = Llama.from_pretrained(str(tmp_path))
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert loaded.lm_head.weight is loaded.embed_tokens.weight  # still tied after assign-loading
    hf = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path), dtype=torch.float32).eval()
    x = tokens(vocab=300)
    with torch.no_grad():
        assert max_rel_err(hf(x).logits, model(x)) < 1e-5


def test_load_in_bf16_keeps_one_copy_of_each_weight(tmp_path):
    torch.manual_seed(0)
    Llama(ModelArgs.preset("tiny", vocab_size=300)).save_pretrained(str(tmp_path))
    model = Llama.from_pretrained(str(tmp_path), dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 and p.device.type == "cpu" for p in model.parameters())
    assert model.inv_freq.dtype == torch.float32 and model.inv_freq.device.type == "cpu"
    assert model(tokens(vocab=300)).dtype == torch.bfloat16


# ---- bad checkpoints: each one names the file and the key -------------------------------------

@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    Llama(ModelArgs.preset("tiny", vocab_size=300, tie_embeddings=False)).save_pretrained(str(tmp_path))
    return tmp_path


def edit_weights(path, edit):
    state = load_file(path / "model.safetensors")
    edit(state)
    save_file(state, path / "model.safetensors", metadata={"format": "pt"})


def test_missing_config(checkpoint):
    os.remove(checkpoint / "config.json")
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        Llama.from_pretrained(str(checkpoint))


def test_missing_tensor(checkpoint):
    edit_weights(checkpoint, lambda s: s.pop("model.layers.1.mlp.up_proj.weight"))
    with pytest.raises(ValueError, match=r"model\.safetensors.*missing tensor 'model\.layers\.1\.mlp\.up_proj\.weight'"):
        Llama.from_pretrained(str(checkpoint))


def test_extra_tensor(checkpoint):
    edit_weights(checkpoint, lambda s: s.update({"model.layers.0.self_attn.rotary_emb.bias": torch.zeros(3)}))
    with pytest.raises(ValueError, match=r"model\.safetensors: unexpected tensor 'model\.layers\.0\.self_attn\.rotary_emb\.bias'"):
        Llama.from_pretrained(str(checkpoint))


def test_shape_mismatch(checkpoint):
    edit_weights(checkpoint, lambda s: s.update({"model.norm.weight": torch.ones(7)}))
    with pytest.raises(ValueError, match=r"model\.safetensors: tensor 'model\.norm\.weight' has shape \[7\]"):
        Llama.from_pretrained(str(checkpoint))


@pytest.mark.parametrize("edit, message", [
    ({"architectures": ["MistralForCausalLM"], "model_type": "mistral"}, "unsupported architecture"),
    ({"attention_bias": True}, "unsupported attention_bias"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "unsupported rope_type 'yarn'"),
])
def test_unsupported_config(checkpoint, edit, message):
    config = json.load(open(checkpoint / "config.json"))
    json.dump({**config, **edit}, open(checkpoint / "config.json", "w"))
    with pytest.raises(ValueError, match=rf"config\.json: {message}"):
        Llama.from_pretrained(str(checkpoint))


def test_missing_shard_and_pickle_only_checkpoints(checkpoint, tmp_path_factory):
    sharded = tmp_path_factory.mktemp("sharded")
    Llama.from_pretrained(str(checkpoint)).save_pretrained(str(sharded), max_shard_bytes=100_000)
    second = sorted(sharded.glob("model-00002-of-*.safetensors"))[0]
    os.remove(second)
    with pytest.raises(FileNotFoundError, match=rf"{second.name}: shard listed in"):
        Llama.from_pretrained(str(sharded))
    # A pickle checkpoint is refused, never unpickled.
    os.remove(checkpoint / "model.safetensors")
    (checkpoint / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(FileNotFoundError, match="only safetensors"):
        Llama.from_pretrained(str(checkpoint))


# ---- the KV-cache path ---------------------------------------------------------------------

def test_cached_decoding_of_ragged_rows_matches_full_forward():
    torch.manual_seed(0)
    args = ModelArgs.preset("tiny", vocab_size=300, n_kv_heads=2, rope_scaling=dict(LLAMA3_SCALING))
    model = Llama(args).eval()
    lengths, steps = [5, 11, 8], 6
    seqs = [torch.randint(0, 300, (n + steps,)) for n in lengths]
    cache = KVCache(args, batch_size=3, max_len=32)
    with torch.no_grad():
        # Prefill, right-padded to the longest prompt: each row's tokens at positions 0..len-1.
        prompt = torch.zeros(3, max(lengths), dtype=torch.long)
        for i, n in enumerate(lengths):
            prompt[i, :n] = seqs[i][:n]
        positions = torch.arange(max(lengths))[None].repeat(3, 1)
        prefill = model(prompt, positions=positions, cache=cache)
        decoded = [[prefill[i, n - 1]] for i, n in enumerate(lengths)]
        for step in range(steps):  # then one token a row, each at its own position
            pos = torch.tensor([[n + step] for n in lengths])
            tok = torch.stack([seqs[i][n + step] for i, n in enumerate(lengths)])[:, None]
            out = model(tok, positions=pos, cache=cache, attend_len=int(pos.max()) + 1)
            for i in range(3):
                decoded[i].append(out[i, 0])
        for i, n in enumerate(lengths):
            full = model(seqs[i][None])[0, n - 1:]
            assert max_rel_err(torch.stack(decoded[i]), full) < 1e-5


def test_hub_id_fetches_only_config_safetensors_and_tokenizer(tmp_path, monkeypatch):
    """The Hub cannot be reached here: stand in for snapshot_download and check what is asked for."""
    import huggingface_hub

    torch.manual_seed(0)
    Llama(ModelArgs.preset("tiny", vocab_size=300)).save_pretrained(str(tmp_path))
    asked = {}

    def fake_snapshot_download(repo_id, allow_patterns=None, **kwargs):
        asked.update(repo_id=repo_id, allow_patterns=allow_patterns)
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    model = Llama.from_pretrained("meta-llama/Llama-3.2-1B-Instruct")
    assert asked["repo_id"] == "meta-llama/Llama-3.2-1B-Instruct"
    assert "*.safetensors" in asked["allow_patterns"] and "config.json" in asked["allow_patterns"]
    assert not any(p.endswith((".bin", ".pt", ".pth", "*")) and p != "*.safetensors" for p in asked["allow_patterns"])
    assert model.args.vocab_size == 300
