using System.Runtime.InteropServices;

namespace AspireAi.Inference.Models.Synthetic;

/// <summary>
/// Random tensors in ggml block formats: random code bytes (every code pattern) with scales of a realistic magnitude written
/// over each block's fp16 scale fields, as llama.cpp's <c>ggml-common.h</c> lays them out. Never zeros.
/// </summary>
public static class RandomWeights
{
    public static byte[] Tensor(GgmlType type, int rows, int columns, int seed, double scale = 0.05)
    {
        var random = new Random(seed);
        if ((long)rows * columns / GgmlTypeInfo.BlockSize(type) * GgmlTypeInfo.BlockBytes(type) > Array.MaxLength)
        {
            throw new ArgumentException($"A random {type} tensor of {rows} × {columns} does not fit one array.");
        }

        var blockSize = GgmlTypeInfo.BlockSize(type);
        var blockBytes = GgmlTypeInfo.BlockBytes(type);
        var blocks = (long)rows * (columns / blockSize);
        var data = new byte[blocks * blockBytes];
        switch (type)
        {
            // Float weights are uniform in ±√3·scale (the variance of a normal of that scale): a Box–Muller normal per value
            // took minutes for the 8B parameters of a Llama-3-8B shape in BF16.
            case GgmlType.F32:
            {
                var f = MemoryMarshal.Cast<byte, float>(data.AsSpan());
                for (var i = 0; i < f.Length; i++)
                {
                    f[i] = Uniform(random, scale);
                }

                return data;
            }

            case GgmlType.F16:
            case GgmlType.BF16:
            {
                var h = MemoryMarshal.Cast<byte, ushort>(data.AsSpan());
                for (var i = 0; i < h.Length; i++)
                {
                    var v = Uniform(random, scale);
                    h[i] = type == GgmlType.F16 ? BitConverter.HalfToUInt16Bits((Half)v) : (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16);
                }

                return data;
            }
        }

        random.NextBytes(data);
        for (long i = 0; i < blocks; i++)
        {
            WriteBlockScales(type, data.AsSpan((int)(i * blockBytes), blockBytes), random, scale);
        }

        return data;
    }

    /// <summary>
    /// Overwrites the fp16 scale fields of one quantized block (random code bytes) with positive scales of a realistic
    /// magnitude for weights of size ~<paramref name="scale"/>, where llama.cpp's <c>ggml-common.h</c> puts them.
    /// </summary>
    public static void WriteBlockScales(GgmlType type, Span<byte> block, Random random, double scale)
    {
        Half Positive(double magnitude) => (Half)(magnitude * (0.5 + random.NextDouble()));
        switch (type)
        {
            case GgmlType.Q8_0:
                BitConverter.TryWriteBytes(block, Positive(scale / 64));
                break;
            case GgmlType.Q4_0:
            case GgmlType.Q5_0:
                BitConverter.TryWriteBytes(block, Positive(scale / 8));
                break;
            case GgmlType.Q4_K:
            case GgmlType.Q5_K:
                BitConverter.TryWriteBytes(block, Positive(scale / 256));
                BitConverter.TryWriteBytes(block[2..], Positive(scale / 128));
                break;
            case GgmlType.Q6_K:
                BitConverter.TryWriteBytes(block[208..], Positive(scale / 1024));
                break;
        }
    }

    public static float[] Floats(int count, Random random, double scale = 1.0, double offset = 0.0)
    {
        var result = new float[count];
        for (var i = 0; i < count; i++)
        {
            result[i] = (float)(offset + Normal(random) * scale);
        }

        return result;
    }

    private static float Uniform(Random random, double scale) => (float)((2 * random.NextDouble() - 1) * 1.7320508075688772 * scale);

    public static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
