using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Models.Synthetic;
using AspireAi.Inference.Serving;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>How many KV blocks the server allocates: the backend's share of its free memory unless the options set one.</summary>
public sealed class KvCacheSizingTests
{
    // Qwen3-0.6B: 28 layers × 2 × 8 KV heads × 128 × 4 bytes = 229,376 bytes a token.
    private static readonly AspireAi.Inference.Models.ModelConfig Qwen3 = ModelShapes.Qwen3_06B(4096);

    [Fact]
    public void Without_a_fraction_the_backends_default_share_of_free_memory_is_used()
    {
        var free = 10L << 30;
        var options = new InferenceOptions { MaxNumSeqs = 256 };
        var atGpuDefault = KvCacheSizing.Blocks(Qwen3, options, free, defaultFraction: 0.8, KvCacheDtype.Float32);
        var atCpuDefault = KvCacheSizing.Blocks(Qwen3, options, free, defaultFraction: 0.2, KvCacheDtype.Float32);
        Assert.Equal(Expected(free, 0.8), atGpuDefault);
        Assert.Equal(Expected(free, 0.2), atCpuDefault);
        Assert.Equal(4, Math.Round((double)atGpuDefault / atCpuDefault));
    }

    [Fact]
    public void A_fraction_in_the_options_overrides_the_backends_and_a_bad_one_names_the_setting()
    {
        var free = 10L << 30;
        var chosen = KvCacheSizing.Blocks(Qwen3, new InferenceOptions { KvCacheFraction = 0.5 }, free, defaultFraction: 0.8, KvCacheDtype.Float32);
        Assert.Equal(Expected(free, 0.5), chosen);
        var error = Assert.Throws<ArgumentException>(() => KvCacheSizing.Blocks(Qwen3, new InferenceOptions { KvCacheFraction = 1.5 }, free, 0.8, KvCacheDtype.Float32));
        Assert.Contains("--kv-cache-fraction", error.Message);
        Assert.Contains("1.5", error.Message);
    }

    [Fact]
    public void More_free_memory_than_every_sequence_at_full_context_can_use_is_not_taken()
    {
        var options = new InferenceOptions { MaxNumSeqs = 4 };
        var blocks = KvCacheSizing.Blocks(Qwen3, options, 1L << 40, defaultFraction: 0.8, KvCacheDtype.Float32);
        Assert.Equal(2 * 4 * 4096 / 16, blocks);
    }

    [Fact]
    public void An_f16_cache_takes_half_the_bytes_a_token_so_the_same_memory_holds_twice_the_blocks()
    {
        Assert.Equal(229_376, KvCacheSizing.BytesPerToken(Qwen3, KvCacheDtype.Float32));
        Assert.Equal(114_688, KvCacheSizing.BytesPerToken(Qwen3, KvCacheDtype.Float16));
        var free = 10L << 30;
        var options = new InferenceOptions { MaxNumSeqs = 256 };
        var atF32 = KvCacheSizing.Blocks(Qwen3, options, free, 0.8, KvCacheDtype.Float32);
        var atF16 = KvCacheSizing.Blocks(Qwen3, options, free, 0.8, KvCacheDtype.Float16);
        Assert.Equal(Expected(free, 0.8), atF32);
        Assert.Equal((int)(((long)(free * 0.8 / 114_688) + 15) / 16), atF16);
        Assert.InRange(atF16, 2 * atF32 - 1, 2 * atF32); // twice, up to rounding to whole tokens and blocks

        // The cap (every sequence at full context, twice) is in tokens: the same at either element size.
        var capped = new InferenceOptions { MaxNumSeqs = 4 };
        Assert.Equal(2 * 4 * 4096 / 16, KvCacheSizing.Blocks(Qwen3, capped, 1L << 40, 0.8, KvCacheDtype.Float16));
    }

    [Fact]
    public void Sizing_needs_the_element_type_a_backend_resolved()
    {
        var error = Assert.Throws<InvalidOperationException>(() => KvCacheSizing.Blocks(Qwen3, new InferenceOptions(), 10L << 30, 0.8, KvCacheDtype.Auto));
        Assert.Contains("auto", error.Message);
    }

    /// <summary>Whole 16-token blocks for the share's tokens, rounded up.</summary>
    private static int Expected(long free, double fraction) => (int)(((long)(free * fraction / 229_376) + 15) / 16);

    [Fact]
    public void The_cpu_backend_keeps_a_fifth_of_free_ram()
    {
        using var backend = new CpuBackend(threads: 1);
        Assert.Equal(0.2, ((IBackend)backend).DefaultKvCacheFraction);
    }
}
