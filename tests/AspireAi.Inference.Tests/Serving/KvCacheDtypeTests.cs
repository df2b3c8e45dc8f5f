using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>
/// <c>--kv-cache-dtype auto|fp32|fp16|bf16|fp8</c> (<c>Inference:KvCacheDtype</c>) on the host side: parsing, the CPU
/// backend's answer (float32 for auto, bf16 and fp8 kept, fp16 refused), and the serving host's checks. The f16 cache
/// itself is CUDA's and is measured against the CPU by GpuCheck; the CPU's bf16 and fp8 attention is checked in
/// CpuAttentionTests, the E4M3 rounding in Float8E4M3Tests.
/// </summary>
public sealed class KvCacheDtypeTests
{
    [Theory]
    [InlineData("auto", KvCacheDtype.Auto)]
    [InlineData("fp32", KvCacheDtype.Float32)]
    [InlineData("fp16", KvCacheDtype.Float16)]
    [InlineData("FP16", KvCacheDtype.Float16)]
    [InlineData("bf16", KvCacheDtype.BFloat16)]
    [InlineData("fp8", KvCacheDtype.Float8E4M3)]
    public void Names_parse_case_insensitively_and_round_trip(string text, KvCacheDtype expected)
    {
        var dtype = KvCacheDtypes.Parse(text, "--kv-cache-dtype");
        Assert.Equal(expected, dtype);
        Assert.Equal(text.ToLowerInvariant(), dtype.Name());
    }

    [Theory]
    [InlineData("fp8_e5m2")]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("1")]
    public void A_bad_name_is_refused_naming_the_setting_and_the_choices(string? text)
    {
        var error = Assert.Throws<ArgumentException>(() => KvCacheDtypes.Parse(text, "Inference:KvCacheDtype (--kv-cache-dtype)"));
        Assert.Equal($"Inference:KvCacheDtype (--kv-cache-dtype) must be auto, fp32, fp16, bf16 or fp8, not '{text}'.", error.Message);
    }

    [Fact]
    public void Element_sizes_are_those_of_float32_and_f16_and_auto_has_none_until_resolved()
    {
        Assert.Equal(4, KvCacheDtype.Float32.ElementBytes());
        Assert.Equal(2, KvCacheDtype.Float16.ElementBytes());
        Assert.Equal(2, KvCacheDtype.BFloat16.ElementBytes());
        Assert.Equal(1, KvCacheDtype.Float8E4M3.ElementBytes());
        Assert.Throws<InvalidOperationException>(() => KvCacheDtype.Auto.ElementBytes());
        var shape = new KvCacheShape(Layers: 2, KvHeads: 4, HeadDim: 64, BlockSize: 16, BlockCount: 3);
        Assert.Equal(16 * 4 * 64 * 4, shape.BytesPerLayerBlock);
        Assert.Equal(16 * 4 * 64 * 2, (shape with { Dtype = KvCacheDtype.Float16 }).BytesPerLayerBlock);
    }

    [Fact]
    public void The_cpu_backend_stores_float32_for_auto_and_refuses_fp16_naming_the_flag()
    {
        using var backend = new CpuBackend(threads: 1);
        IBackend cpu = backend;
        Assert.Equal(KvCacheDtype.Float32, cpu.ResolveKvCacheDtype(KvCacheDtype.Auto));
        Assert.Equal(KvCacheDtype.Float32, cpu.ResolveKvCacheDtype(KvCacheDtype.Float32));
        Assert.Equal(KvCacheDtype.BFloat16, cpu.ResolveKvCacheDtype(KvCacheDtype.BFloat16));
        Assert.Equal(KvCacheDtype.Float8E4M3, cpu.ResolveKvCacheDtype(KvCacheDtype.Float8E4M3));
        var error = Assert.Throws<ArgumentException>(() => cpu.ResolveKvCacheDtype(KvCacheDtype.Float16));
        Assert.Contains("--kv-cache-dtype", error.Message);
        Assert.Contains("fp16", error.Message);
        Assert.Contains("float32", error.Message);

        var shape = new KvCacheShape(Layers: 1, KvHeads: 2, HeadDim: 8, BlockSize: 4, BlockCount: 2, Dtype: KvCacheDtype.Auto);
        using var cache = cpu.CreateKvCache(shape);
        Assert.Equal(KvCacheDtype.Float32, cache.Shape.Dtype); // the cache's shape holds the resolved type
        using var store = cpu.CreateKvOffloadStore(shape, 2);
        Assert.Equal(KvCacheDtype.Float32, store.Shape.Dtype);
        Assert.Throws<ArgumentException>(() => cpu.CreateKvCache(shape with { Dtype = KvCacheDtype.Float16 }));
    }

    [Fact]
    public async Task Serve_refuses_a_bad_value_and_fp16_on_the_cpu_and_serves_auto_as_float32()
    {
        using var temp = new TempDirectory();
        var path = temp.File("tiny.gguf");
        new TinyGgufModel { Vocabulary = 64, Context = 128, Seed = 3 }.CreateWriter().WriteTo(path);

        var bad = await Assert.ThrowsAnyAsync<ArgumentException>(() => ServingHost.StartAsync(path, "--kv-cache-dtype", "int8"));
        Assert.Contains("Inference:KvCacheDtype (--kv-cache-dtype) must be auto, fp32, fp16, bf16 or fp8, not 'int8'", bad.Message);

        var half = await Assert.ThrowsAnyAsync<ArgumentException>(() => ServingHost.StartAsync(path, "--device", "cpu", "--kv-cache-dtype", "fp16"));
        Assert.Contains("--kv-cache-dtype", half.Message);
        Assert.Contains("fp16", half.Message);

        await using (var host = await ServingHost.StartAsync(path, "--device", "cpu", "--kv-cache-tokens", "256"))
        {
            Assert.Equal(KvCacheDtype.Float32, host.Model.Engine.Options.KvCacheDtype);
        }

        await using (var bf16 = await ServingHost.StartAsync(path, "--device", "cpu", "--kv-cache-tokens", "256", "--kv-cache-dtype", "bf16"))
        {
            Assert.Equal(KvCacheDtype.BFloat16, bf16.Model.Engine.Options.KvCacheDtype);
        }

        await using var fp8 = await ServingHost.StartAsync(path, "--device", "cpu", "--kv-cache-tokens", "256", "--kv-cache-dtype", "fp8");
        Assert.Equal(KvCacheDtype.Float8E4M3, fp8.Model.Engine.Options.KvCacheDtype);
    }
}
