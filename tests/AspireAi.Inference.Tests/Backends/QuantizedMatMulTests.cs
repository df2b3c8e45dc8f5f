using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Models;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Backends;

/// <summary>
/// Every weight type's matmul against float64 math on the test's own dequantization of the same blocks, at every SIMD tier
/// this machine has, with shapes that leave tails: odd block counts per row (9 blocks of 32), row counts that do not divide
/// among threads or into 16-row chunks, token counts that leave a tail after the 4-token tiles.
/// </summary>
public sealed unsafe class QuantizedMatMulTests
{
    public static TheoryData<GgmlType, SimdLevel> TypesAndLevels()
    {
        var data = new TheoryData<GgmlType, SimdLevel>();
        foreach (var type in GgmlReference.AllTypes)
        {
            foreach (var level in Enum.GetValues<SimdLevel>().Where(SimdLevels.IsSupported))
            {
                data.Add(type, level);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TypesAndLevels))]
    public void MatMul_matches_float64_reference_on_odd_shapes(GgmlType type, SimdLevel level)
    {
        var blockSize = GgmlTypeInfo.BlockSize(type);
        // K: one block, an odd number of 32-blocks (288 = 9 × 32, stories15M's width), several K-quant super-blocks.
        int[] widths = blockSize == 256 ? [256, 768] : blockSize == 32 ? [32, 288, 544] : [7, 288, 301];
        var random = new Random(1234 + (int)type);
        foreach (var k in widths)
        {
            foreach (var (n, tokens, threads) in new[] { (37, 1, 2), (50, 7, 3), (16, 4, 1), (129, 9, 2) })
            {
                Check(type, level, random, n, k, tokens, threads);
            }
        }
    }

    private static void Check(GgmlType type, SimdLevel level, Random random, int n, int k, int tokens, int threads)
    {
        var weight = new PinnedTensor("w", type, n, k, GgmlReference.RandomTensor(type, n, k, random));
        var w = weight.Dequantized;
        var x = new float[tokens * k];
        for (var i = 0; i < x.Length; i++)
        {
            x[i] = (float)GgmlReference.Normal(random);
        }

        using var backend = new CpuBackend(threads, level);
        using var deviceWeight = backend.LoadWeight(weight.View);
        using var input = backend.CreateTensor(tokens, k);
        using var output = backend.CreateTensor(tokens, n);
        backend.WriteRows(input, x);
        backend.MatMul(input, deviceWeight, output, tokens);
        var y = new float[tokens * n];
        backend.ReadRows(output, tokens, y);

        var quantizedActivations = type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16);
        for (var t = 0; t < tokens; t++)
        {
            // Integer kernels see the activations as int8 blocks (d = max|x|/127, round half to even): the reference applies
            // the same rounding, so the only difference left is float summation order.
            var xt = quantizedActivations ? QuantizeLikeQ8(x.AsSpan(t * k, k)) : x.AsSpan(t * k, k).ToArray().Select(v => (double)v).ToArray();
            for (var r = 0; r < n; r++)
            {
                double expected = 0, magnitude = 0;
                for (var i = 0; i < k; i++)
                {
                    expected += w[r * k + i] * xt[i];
                    magnitude += Math.Abs(w[r * k + i] * xt[i]);
                }

                var actual = y[t * n + r];
                var tolerance = 2e-6 * magnitude + 1e-6 * k * 1e-3;
                Assert.True(Math.Abs(actual - expected) <= tolerance,
                    $"{type}/{level} n={n} k={k} tokens={tokens} threads={threads}: y[{t},{r}] = {actual}, expected {expected} (±{tolerance})");
            }
        }
    }

    [Theory]
    [MemberData(nameof(TypesAndLevels))]
    public void Results_are_bit_identical_at_any_thread_count(GgmlType type, SimdLevel level)
    {
        // Rows are split between threads in 16-row chunks at fixed positions, so a row goes through the same kernel path
        // (four-row groups included) whichever thread computes it: outputs may not depend on the thread count (the
        // greedy-token tests against reference outputs, and any change to how the pool splits work, rely on it).
        var k = GgmlTypeInfo.BlockSize(type) == 256 ? 512 : 288;
        var random = new Random(99 + (int)type);
        PinnedTensor Weight(string name, int rows) => new(name, type, rows, k, GgmlReference.RandomTensor(type, rows, k, random));
        var (gate, up) = (Weight("gate", 200), Weight("up", 200));
        foreach (var tokens in new[] { 1, 13 })
        {
            var x = Enumerable.Range(0, tokens * k).Select(_ => (float)GgmlReference.Normal(random)).ToArray();
            float[][]? expected = null;
            foreach (var threads in new[] { 1, 2, 3 })
            {
                using var backend = new CpuBackend(threads, level);
                using var g = backend.LoadWeight(gate.View);
                using var u = backend.LoadWeight(up.View);
                using var input = backend.CreateTensor(tokens, k);
                backend.WriteRows(input, x);
                using var gateOut = backend.CreateTensor(tokens, 200);
                using var upOut = backend.CreateTensor(tokens, 200);
                using var activated = backend.CreateTensor(tokens, 200);
                backend.MatMul(input, g, gateOut, tokens);
                backend.MatMul(input, u, upOut, tokens);
                backend.SiluMul(gateOut, upOut, activated, tokens);
                var results = new[] { gateOut, upOut, activated }.Select(o =>
                {
                    var values = new float[tokens * o.Columns];
                    backend.ReadRows(o, tokens, values);
                    return values;
                }).ToArray();
                expected ??= results;
                for (var i = 0; i < results.Length; i++)
                {
                    Assert.True(expected[i].AsSpan().SequenceEqual(results[i]), $"{type}/{level} tokens={tokens} threads={threads}: output {i} differs");
                }
            }
        }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q5_0)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q5_K)]
    [InlineData(GgmlType.Q6_K)]
    public void Repacked_rows_dequantize_to_the_file_values(GgmlType type)
    {
        // The repacker writes whole blocks into the interleaved row groups (CpuWeight.WriteBlock); the embedding lookup and
        // the portable kernel read single codes back (CodeLocation, Scale, Min): every row of a matrix whose last group is
        // partial must come back as the file's values.
        var k = GgmlTypeInfo.BlockSize(type) == 256 ? 512 : 96;
        const int rows = 37;
        var random = new Random(7 + (int)type);
        var tensor = new PinnedTensor("w", type, rows, k, GgmlReference.RandomTensor(type, rows, k, random));
        var expected = tensor.Dequantized;
        using var weight = (CpuWeight)WeightRepacker.Load(tensor.View);
        var row = new float[k];
        for (var r = 0; r < rows; r++)
        {
            fixed (float* destination = row)
            {
                weight.DequantizeRow(r, destination);
            }

            for (var i = 0; i < k; i++)
            {
                // Scales and mins are exact floats; value = scale · code − min rounds once, like the reference's float math.
                Assert.True(Math.Abs(row[i] - expected[r * k + i]) <= 1e-6 * Math.Abs(expected[r * k + i]) + 1e-9,
                    $"{type} row {r} column {i}: {row[i]}, expected {expected[r * k + i]}");
            }
        }
    }

    /// <summary>llama.cpp's q8_0 activation quantization, dequantized back to doubles.</summary>
    public static double[] QuantizeLikeQ8(ReadOnlySpan<float> x)
    {
        var result = new double[x.Length];
        for (var b = 0; b < x.Length; b += 32)
        {
            var amax = 0f;
            for (var i = b; i < b + 32; i++)
            {
                amax = MathF.Max(amax, MathF.Abs(x[i]));
            }

            var d = amax / 127f;
            var id = amax > 0 ? 127f / amax : 0f;
            for (var i = b; i < b + 32; i++)
            {
                result[i] = (double)d * MathF.Round(x[i] * id, MidpointRounding.ToEven);
            }
        }

        return result;
    }

    [Fact]
    public void Float16_weights_convert_every_finite_bit_pattern()
    {
        // Every finite half, including subnormals and ±0, as the weights of a 64 × 1008 matrix (1008 = 63 · 16: a scalar tail).
        var patterns = Enumerable.Range(0, 65536).Where(h => (h & 0x7C00) != 0x7C00).Select(h => (ushort)h).ToArray();
        const int k = 1008;
        var n = patterns.Length / k;
        var bytes = new byte[n * k * 2];
        Buffer.BlockCopy(patterns, 0, bytes, 0, bytes.Length);
        var weight = new PinnedTensor("w", GgmlType.F16, n, k, bytes);
        var w = weight.Dequantized;
        foreach (var level in Enum.GetValues<SimdLevel>().Where(SimdLevels.IsSupported))
        {
            using var backend = new CpuBackend(1, level);
            using var dw = backend.LoadWeight(weight.View);
            using var input = backend.CreateTensor(1, k);
            using var output = backend.CreateTensor(1, n);
            var x = Enumerable.Range(0, k).Select(i => i % 3 == 0 ? 1f : -0.5f).ToArray();
            backend.WriteRows(input, x);
            backend.MatMul(input, dw, output, 1);
            var y = new float[n];
            backend.ReadRows(output, 1, y);
            for (var r = 0; r < n; r++)
            {
                double expected = 0, magnitude = 0;
                for (var i = 0; i < k; i++)
                {
                    expected += w[r * k + i] * x[i];
                    magnitude += Math.Abs(w[r * k + i] * x[i]);
                }

                Assert.True(Math.Abs(y[r] - expected) <= 1e-6 * magnitude + 1e-30, $"{level} row {r}: {y[r]} vs {expected}");
            }
        }
    }
}
