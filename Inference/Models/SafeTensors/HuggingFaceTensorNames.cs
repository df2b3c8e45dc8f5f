namespace AspireAi.Inference.Models.SafeTensors;

/// <summary>
/// Hugging Face tensor names of the llama/qwen2/qwen3 causal-LM checkpoints to the engine's GGUF names, as llama.cpp's
/// <c>gguf-py/gguf/tensor_mapping.py</c> maps them (<c>model.layers.N.self_attn.q_proj.weight</c> → <c>blk.N.attn_q.weight</c>).
/// </summary>
internal static class HuggingFaceTensorNames
{
    private const string LayerPrefix = "model.layers.";

    private static readonly Dictionary<string, string> Global = new(StringComparer.Ordinal)
    {
        ["model.embed_tokens.weight"] = "token_embd.weight",
        ["model.norm.weight"] = "output_norm.weight",
        ["lm_head.weight"] = "output.weight",
    };

    private static readonly Dictionary<string, string> PerLayer = new(StringComparer.Ordinal)
    {
        ["input_layernorm.weight"] = "attn_norm.weight",
        ["self_attn.q_proj.weight"] = "attn_q.weight",
        ["self_attn.k_proj.weight"] = "attn_k.weight",
        ["self_attn.v_proj.weight"] = "attn_v.weight",
        ["self_attn.o_proj.weight"] = "attn_output.weight",
        ["self_attn.q_proj.bias"] = "attn_q.bias",
        ["self_attn.k_proj.bias"] = "attn_k.bias",
        ["self_attn.v_proj.bias"] = "attn_v.bias",
        ["self_attn.q_norm.weight"] = "attn_q_norm.weight",
        ["self_attn.k_norm.weight"] = "attn_k_norm.weight",
        ["post_attention_layernorm.weight"] = "ffn_norm.weight",
        ["mlp.gate_proj.weight"] = "ffn_gate.weight",
        ["mlp.up_proj.weight"] = "ffn_up.weight",
        ["mlp.down_proj.weight"] = "ffn_down.weight",
    };

    /// <summary>Older checkpoints save RoPE's inverse frequencies; they are recomputed from the config, never read.</summary>
    public static bool IsIgnored(string name) => name.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal);

    /// <summary>The GGUF name of <paramref name="name"/>, or null when it has none or names a layer at or past <paramref name="layers"/>.</summary>
    public static string? ToGguf(string name, int layers)
    {
        if (Global.TryGetValue(name, out var global))
        {
            return global;
        }

        if (!name.StartsWith(LayerPrefix, StringComparison.Ordinal))
        {
            return null;
        }

        var rest = name.AsSpan(LayerPrefix.Length);
        var dot = rest.IndexOf('.');
        // Digits only, no sign or leading zero: "model.layers.01.x" is not layer 1.
        if (dot <= 0 || (dot > 1 && rest[0] == '0') || !int.TryParse(rest[..dot], System.Globalization.NumberStyles.None, null, out var layer) ||
            layer >= layers || !PerLayer.TryGetValue(rest[(dot + 1)..].ToString(), out var suffix))
        {
            return null;
        }

        return $"blk.{layer}.{suffix}";
    }

    /// <summary>The Hugging Face name of a GGUF tensor (for errors about a missing tensor).</summary>
    public static string ToHuggingFace(string ggufName)
    {
        foreach (var (hf, gguf) in Global)
        {
            if (gguf == ggufName)
            {
                return hf;
            }
        }

        var parts = ggufName.Split('.', 3);
        var suffix = PerLayer.First(p => p.Value == parts[2]).Key;
        return $"{LayerPrefix}{parts[1]}.{suffix}";
    }
}
