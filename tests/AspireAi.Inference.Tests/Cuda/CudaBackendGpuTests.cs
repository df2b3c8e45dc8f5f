using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Models;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Cuda;

/// <summary>
/// The CUDA backend on a real GPU, where there is one (CI has none: these tests are skipped there with the driver's reason;
/// tools/GpuCheck is the full GPU check).
/// </summary>
public sealed class CudaBackendGpuTests
{
    [Theory]
    [InlineData(GgmlType.Q8_0, 1)]
    [InlineData(GgmlType.Q4_K, 19)]
    [InlineData(GgmlType.F16, 33)]
    public void MatMulMatchesTheCpuBackend(GgmlType type, int rows)
    {
        Assert.SkipUnless(CudaContext.IsAvailable(out var why), $"no GPU here: {why}");
        const int n = 70, k = 512;
        var weight = new PinnedTensor("w", type, n, k, GgmlReference.RandomTensor(type, n, k, new Random(3)));
        var random = new Random(4);
        var x = Enumerable.Range(0, rows * k).Select(_ => (float)GgmlReference.Normal(random)).ToArray();
        using var gpu = new CudaBackend();
        using var cpu = new CpuBackend(threads: 1);
        var results = new List<float[]>();
        foreach (var backend in new AspireAi.Inference.Backends.IBackend[] { gpu, cpu })
        {
            using var w = backend.LoadWeight(weight.View);
            using var input = backend.CreateTensor(rows, k);
            using var output = backend.CreateTensor(rows, n);
            backend.WriteRows(input, x);
            backend.WriteRows(output, Enumerable.Repeat(float.NaN, rows * n).ToArray());
            backend.MatMul(input, w, output, rows);
            var y = new float[rows * n];
            backend.ReadRows(output, rows, y);
            results.Add(y);
        }

        double difference = 0, reference = 0;
        for (var i = 0; i < results[0].Length; i++)
        {
            Assert.True(float.IsFinite(results[0][i]), $"output {i} was not written");
            difference += Math.Pow(results[0][i] - results[1][i], 2);
            reference += Math.Pow(results[1][i], 2);
        }

        Assert.True(Math.Sqrt(difference / reference) < 2e-3, $"relative error {Math.Sqrt(difference / reference):E2}");
    }
}
